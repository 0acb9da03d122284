/**
 * The stream behind `GET /v1/stream`: lifecycle events turned into messages
 * with increasing ids, fanned out to subscribers and kept in a ring buffer so
 * a client that reconnects with `Last-Event-ID` gets what it missed.
 *
 * The buffer holds at most `bufferSize` messages and none older than
 * `retentionMs`. Ids are `<epoch>-<seq>`: the epoch changes whenever the node
 * starts, so an id from another node or from before a restart is recognised as
 * unknown and the client is told about the gap instead of silently missing
 * messages. Each message's data is serialised once, however many listen.
 */
import { randomBytes } from 'node:crypto';
import type { WaitRow } from '../core/durable.js';
import type { JobRow, JobState } from '../core/types.js';
import type { LifecycleSubscriber } from '../core/lifecycle-events.js';

/** `interrupt`: a durable job's interrupt was created, resumed or timed out (docs/api.md#event-stream). */
export type StreamEventType = 'job' | 'handler' | 'queue' | 'interrupt';

export interface StreamMessage {
  seq: number;
  id: string;
  event: StreamEventType;
  /** Filter attributes. */
  handler: string | null;
  queue: string | null;
  jobId: string | null;
  at: number;
  /** The `data:` line: JSON, one line. */
  data: string;
}

export interface StreamFilter {
  handlers?: ReadonlySet<string>;
  queues?: ReadonlySet<string>;
  jobs?: ReadonlySet<string>;
}

export type Resume =
  | { kind: 'replay'; messages: StreamMessage[] }
  /** The client missed messages this node no longer has; `latestId` is where the stream goes on from. */
  | { kind: 'gap'; reason: string; latestId: string };

export interface StreamHubOptions {
  bufferSize: number;
  retentionMs: number;
  clock: () => number;
}

type Listener = (message: StreamMessage) => void;

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export class StreamHub {
  readonly epoch: string;
  readonly #ring: Array<StreamMessage | undefined>;
  #start = 0;
  #count = 0;
  #seq = 0;
  readonly #listeners = new Set<Listener>();
  /** Jobs already seen past `queued` (bounded): their late `job:enqueued` is stale. */
  readonly #started = new Set<string>();
  readonly #unsubscribe: Array<() => void> = [];
  /**
   * Messages are kept only once somebody has subscribed. Before that nobody
   * holds an id of this epoch, so nothing published could ever be asked for
   * again; skipping the buffer keeps a node nobody watches from building (and
   * garbage-collecting) two messages per job.
   */
  #buffering = false;

  constructor(
    lifecycle: LifecycleSubscriber,
    private readonly options: StreamHubOptions,
  ) {
    this.epoch = `${options.clock().toString(36)}${randomBytes(3).toString('hex')}`;
    this.#ring = new Array<StreamMessage | undefined>(Math.max(1, options.bufferSize));
    this.#subscribe(lifecycle);
  }

  /** The id of the newest message (`<epoch>-0` before the first). */
  get latestId(): string {
    return `${this.epoch}-${this.#seq}`;
  }

  subscribe(listener: Listener): () => void {
    this.#buffering = true;
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  /** What a client that last saw `lastEventId` missed, or a gap when that is no longer known. */
  resume(lastEventId: string): Resume {
    this.#expire();
    const match = /^([a-z0-9]+)-(\d{1,15})$/.exec(lastEventId);
    const gap = (reason: string): Resume => ({ kind: 'gap', reason, latestId: this.latestId });
    if (!match) return gap('Last-Event-ID is not an id this API issued');
    if (match[1] !== this.epoch) return gap('Last-Event-ID was issued by another node or before this node restarted');
    const seen = Number(match[2]);
    if (seen > this.#seq) return gap('Last-Event-ID is newer than anything this node sent');
    const oldest = this.#count > 0 ? this.#at(0).seq : this.#seq + 1;
    if (seen + 1 < oldest) {
      return gap(`Last-Event-ID is older than the retention window (the last ${this.options.bufferSize} messages, at most ${this.options.retentionMs} ms old)`);
    }
    const messages: StreamMessage[] = [];
    for (let i = 0; i < this.#count; i++) {
      const message = this.#at(i);
      if (message.seq > seen) messages.push(message);
    }
    return { kind: 'replay', messages };
  }

  close(): void {
    for (const off of this.#unsubscribe.splice(0)) off();
    this.#listeners.clear();
  }

  /** Publish a message (lifecycle listeners call this; exposed for tests). Null while nobody has subscribed yet. */
  publish(event: StreamEventType, attrs: { handler?: string; queue?: string; jobId?: string }, data: Record<string, unknown>): StreamMessage | null {
    const seq = ++this.#seq;
    if (!this.#buffering) return null;
    const at = this.options.clock();
    // Serialised on first read: most messages are never sent (no subscriber) nor replayed,
    // and this runs for every job state change on the hot path.
    let json: string | undefined;
    const message: StreamMessage = {
      seq,
      id: `${this.epoch}-${seq}`,
      event,
      handler: attrs.handler ?? null,
      queue: attrs.queue ?? null,
      jobId: attrs.jobId ?? null,
      at,
      get data() {
        json ??= JSON.stringify({ ...data, at: new Date(at).toISOString() });
        return json;
      },
    };
    this.#push(message);
    for (const listener of this.#listeners) {
      try {
        listener(message);
      } catch {
        // One broken connection must not keep the message from the others; its own close handler cleans it up.
      }
    }
    return message;
  }

  #push(message: StreamMessage): void {
    const size = this.#ring.length;
    if (this.#count === size) {
      this.#ring[this.#start] = message;
      this.#start = (this.#start + 1) % size;
    } else {
      this.#ring[(this.#start + this.#count) % size] = message;
      this.#count++;
    }
    this.#expire();
  }

  #at(i: number): StreamMessage {
    return this.#ring[(this.#start + i) % this.#ring.length] as StreamMessage;
  }

  #expire(): void {
    const cutoff = this.options.clock() - this.options.retentionMs;
    while (this.#count > 0 && this.#at(0).at < cutoff) {
      this.#ring[this.#start] = undefined;
      this.#start = (this.#start + 1) % this.#ring.length;
      this.#count--;
    }
  }

  #job(job: Pick<JobRow, 'id' | 'handler' | 'queue' | 'attempts' | 'eventId'>, state: JobState, extra: Record<string, unknown> = {}): void {
    if (!this.#buffering) return void this.#seq++;
    this.publish(
      'job',
      { handler: job.handler, queue: job.queue, jobId: job.id },
      { id: job.id, handler: job.handler, queue: job.queue, state, attempt: job.attempts, eventId: job.eventId, ...extra },
    );
  }

  /** No prompt or schema: the stream is for `read` keys; the interrupt itself is read with a `resume` key. */
  #interrupt(wait: WaitRow, state: 'pending' | 'resumed' | 'timed_out', extra: Record<string, unknown> = {}): void {
    if (!this.#buffering) return void this.#seq++;
    this.publish(
      'interrupt',
      { handler: wait.handler, jobId: wait.jobId },
      { id: wait.id, jobId: wait.jobId, handler: wait.handler, step: wait.step, state, expiresAt: iso(wait.wakeAt), ...extra },
    );
  }

  #subscribe(lifecycle: LifecycleSubscriber): void {
    const on = this.#unsubscribe;
    // The dispatcher may start a job in the same group commit that inserted it, and its
    // `job:start` can reach us before the producer's `job:enqueued`: never send running → queued.
    on.push(
      lifecycle.on('job:enqueued', ({ job }) => {
        if (!this.#started.has(job.id)) this.#job(job, job.state);
      }),
    );
    on.push(
      lifecycle.on('job:start', ({ job }) => {
        if (!this.#buffering) return void this.#seq++;
        if (this.#started.size >= 50_000) this.#started.delete(this.#started.values().next().value!);
        this.#started.add(job.id);
        this.#job(job, 'running');
      }),
    );
    on.push(lifecycle.on('job:succeeded', ({ job, durationMs }) => this.#job(job, 'succeeded', { durationMs })));
    on.push(
      lifecycle.on('job:failed', ({ job, outcome, error, retryAt, deadReason, durationMs }) => {
        const state: JobState = retryAt === null ? 'dead' : retryAt <= this.options.clock() ? 'queued' : 'scheduled';
        this.#job(job, state, {
          outcome,
          error: error.message.slice(0, 1000),
          retryAt: retryAt === null ? null : new Date(retryAt).toISOString(),
          ...(retryAt === null ? { deadReason } : {}),
          durationMs,
        });
      }),
    );
    on.push(lifecycle.on('job:released', ({ job }) => this.#job(job, 'queued', { outcome: 'released' })));
    on.push(
      lifecycle.on('lease:expired', ({ jobId, handler, queue, state }) =>
        this.publish('job', { handler, queue, jobId }, { id: jobId, handler, queue, state, outcome: 'lease_expired' }),
      ),
    );
    on.push(lifecycle.on('job:cancelled', ({ job }) => this.#job(job, 'cancelled')));
    // Durable jobs: suspended on a wait, woken (queued again); an interrupt wait is also an `interrupt` message.
    on.push(
      lifecycle.on('job:suspended', ({ job, wait, durationMs }) => {
        this.#job(job, 'suspended', { reason: wait.kind, step: wait.step, waitId: wait.id, wakeAt: iso(wait.wakeAt), durationMs });
        if (wait.kind === 'interrupt') this.#interrupt(wait, 'pending');
      }),
    );
    on.push(
      lifecycle.on('job:woken', ({ job, wait, cause, actor }) => {
        this.#job(job, job.state, { reason: wait.kind, step: wait.step, waitId: wait.id, cause });
        if (wait.kind === 'interrupt' && cause === 'resume') this.#interrupt(wait, 'resumed', { resolvedBy: actor });
        else if (wait.kind === 'interrupt' && cause === 'timeout') this.#interrupt(wait, 'timed_out');
      }),
    );
    on.push(lifecycle.on('job:retried', ({ job }) => this.#job(job, job.state)));
    on.push(
      lifecycle.on('handler:changed', ({ handler, queue, paused, action }) =>
        this.publish('handler', { handler, queue }, { name: handler, queue, paused, action }),
      ),
    );
    on.push(lifecycle.on('queue:changed', ({ queue, paused, action }) => this.publish('queue', { queue }, { name: queue, paused, action })));
  }
}

/** Does `message` pass the subscriber's filter? Every filter given must match. */
export function matches(message: StreamMessage, filter: StreamFilter): boolean {
  if (filter.jobs && (message.jobId === null || !filter.jobs.has(message.jobId))) return false;
  if (filter.handlers && (message.handler === null || !filter.handlers.has(message.handler))) return false;
  if (filter.queues && (message.queue === null || !filter.queues.has(message.queue))) return false;
  return true;
}

/** One message on the wire. */
export function formatMessage(message: StreamMessage): string {
  return `id: ${message.id}\nevent: ${message.event}\ndata: ${message.data}\n\n`;
}
