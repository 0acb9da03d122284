/**
 * `drover/client`: a typed HTTP client for producers and operators.
 *
 * - Events get a client-generated id when none is given, so a send retried
 *   after a network error is still accepted once.
 * - 429 and 503 answers are retried after `Retry-After` (they wrote nothing).
 * - Errors are `DroverApiError` with the problem `code` (`queue-full`, …).
 * - Requests go over `node:http` on kept-alive connections, and the
 *   `enqueue`/`sendEvent` calls made in the same tick share one batch request,
 *   each with its own answer or error (coalesce.ts).
 *
 * @example
 * import { createClient } from 'drover/client';
 * const drover = createClient({ url: 'http://127.0.0.1:7070', key: process.env.API_KEY! });
 * const { jobs } = await drover.sendEvent({ name: 'order.created', data: { id: 42 } });
 * const done = await drover.waitForJob(jobs[0]!.id, { timeoutMs: 60_000 });
 */
import { DroverApiError, DroverTimeoutError } from './errors.js';
import { Coalescer } from './coalesce.js';
import { anySignal, sleep, Transport, toApiError, type TransportOptions } from './http.js';
import { readFrames, toMessage } from './sse.js';
import {
  TERMINAL_JOB_STATES,
  type EnqueuedJob,
  type EventInput,
  type EventWithJobs,
  type Interrupt,
  type InterruptPage,
  type Job,
  type JobFilter,
  type JobPage,
  type JobRequest,
  type JobWithAttempts,
  type SentEvent,
  type StreamFilter,
  type StreamMessage,
} from './types.js';

export { DroverApiError, DroverNetworkError, DroverTimeoutError, isProblem, type Problem } from './errors.js';
export type * from './types.js';
export { TERMINAL_JOB_STATES } from './types.js';

export type ClientOptions = TransportOptions;

export interface StreamOptions {
  /** Resume after this message id (what a previous stream yielded last). */
  lastEventId?: string;
  signal?: AbortSignal;
  /** Wait before reconnecting after the connection drops. Default 1 s. */
  reconnectDelayMs?: number;
}

export interface WaitOptions {
  /** Give up after this long with `DroverTimeoutError`. Default: wait forever (or until `signal`). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface DroverClient {
  /** Send one event; answers with the jobs it fanned out to. */
  sendEvent(event: EventInput, options?: { signal?: AbortSignal }): Promise<SentEvent>;
  /** Send up to 1,000 events in one transaction. */
  sendEvents(events: EventInput[], options?: { signal?: AbortSignal }): Promise<SentEvent[]>;
  /** Enqueue one job for a handler. */
  enqueue(job: JobRequest, options?: { signal?: AbortSignal }): Promise<EnqueuedJob>;
  /** Enqueue up to 1,000 jobs in one transaction. */
  enqueueMany(jobs: JobRequest[], options?: { signal?: AbortSignal }): Promise<EnqueuedJob[]>;
  getJob(id: string, options?: { signal?: AbortSignal }): Promise<JobWithAttempts>;
  getEvent(id: string, options?: { signal?: AbortSignal }): Promise<EventWithJobs>;
  /** Every job matching the filter, newest first, fetching pages as you iterate. */
  listJobs(filter?: JobFilter, options?: { signal?: AbortSignal }): AsyncIterableIterator<Job>;
  /** The same, a page at a time. */
  listJobPages(filter?: JobFilter, options?: { signal?: AbortSignal }): AsyncIterableIterator<JobPage>;
  cancel(id: string, options?: { signal?: AbortSignal }): Promise<Job>;
  retry(id: string, options?: { signal?: AbortSignal }): Promise<Job>;
  /** Resolve with the job once it is succeeded, dead or cancelled (watches the event stream). */
  waitForJob(id: string, options?: WaitOptions): Promise<JobWithAttempts>;
  /** State changes as they happen; reconnects with Last-Event-ID. Break out of the loop (or abort) to stop. */
  stream(filter?: StreamFilter, options?: StreamOptions): AsyncIterableIterator<StreamMessage>;
  /** A page of interrupts of durable jobs, newest first (scope `resume`); pass `nextCursor` as `cursor` for the next. */
  listInterrupts(filter?: { state?: Interrupt['state']; handler?: string; limit?: number; cursor?: string }, options?: { signal?: AbortSignal }): Promise<InterruptPage>;
  getInterrupt(id: string, options?: { signal?: AbortSignal }): Promise<Interrupt>;
  /**
   * Answer a pending interrupt; its job is queued again. Not retried on a
   * network error (a resume that did commit would answer 409 the second
   * time): read the interrupt to learn whether it was resumed.
   */
  resumeInterrupt(id: string, input: unknown, options?: { signal?: AbortSignal }): Promise<{ interrupt: Interrupt; job: Job }>;
  /** Any other route, with the same auth, retries and errors. */
  request<T = unknown>(method: 'GET' | 'POST', path: string, body?: unknown, options?: { signal?: AbortSignal }): Promise<T>;
}

const isTerminal = (state: string) => (TERMINAL_JOB_STATES as readonly string[]).includes(state);
const enc = encodeURIComponent;

/**
 * @example
 * const drover = createClient({ url: 'http://127.0.0.1:7070', key });
 * for await (const job of drover.listJobs({ state: 'dead' })) console.log(job.id, job.lastError);
 */
export function createClient(options: ClientOptions): DroverClient {
  const http = new Transport(options);
  const singleJobs = new Coalescer<EnqueuedJob>(http, { path: '/v1/jobs', field: 'jobs' });
  const singleEvents = new Coalescer<SentEvent>(http, { path: '/v1/events', field: 'events' });

  const withIds = (events: EventInput[]) => events.map((e) => (e.id === undefined ? { ...e, id: `evt_${crypto.randomUUID()}` } : e));
  const jobBody = (job: JobRequest) => (job.runAt instanceof Date ? { ...job, runAt: job.runAt.toISOString() } : job);

  async function* listJobPages(filter: JobFilter = {}, opts: { signal?: AbortSignal } = {}): AsyncIterableIterator<JobPage> {
    let cursor: string | undefined;
    for (;;) {
      const page = await http.request<JobPage>('GET', '/v1/jobs', {
        query: {
          state: filter.state,
          handler: filter.handler,
          queue: filter.queue,
          createdAfter: filter.createdAfter?.toISOString(),
          createdBefore: filter.createdBefore?.toISOString(),
          ...Object.fromEntries(Object.entries(filter.payload ?? {}).map(([field, value]) => [`payload.${field}`, value])),
          limit: filter.pageSize ?? 100,
          cursor,
        },
        idempotent: true,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      yield page;
      if (page.nextCursor === null || page.jobs.length === 0) return;
      cursor = page.nextCursor;
    }
  }

  /** One stream connection: resolves once the server answered (so nothing after this is missed). */
  async function connect(path: string, lastEventId: string | undefined, signal: AbortSignal | undefined) {
    const response = await http.send('GET', path, { ...(signal ? { signal } : {}), timeoutMs: 0, headers: lastEventId ? { 'last-event-id': lastEventId } : {} }, 'text/event-stream');
    if (!response.ok || !response.body) throw await toApiError(response);
    return readFrames(response.body);
  }

  function streamPath(filter: StreamFilter): string {
    const list = (v: string | string[] | undefined) => (v === undefined ? undefined : Array.isArray(v) ? v.join(',') : v);
    const query = Object.entries({ handler: list(filter.handler), queue: list(filter.queue), job: list(filter.job) })
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${enc(v!)}`);
    return `/v1/stream${query.length ? `?${query.join('&')}` : ''}`;
  }

  async function* stream(filter: StreamFilter = {}, opts: StreamOptions = {}): AsyncIterableIterator<StreamMessage> {
    let lastEventId = opts.lastEventId;
    const path = streamPath(filter);
    for (;;) {
      try {
        for await (const frame of await connect(path, lastEventId, opts.signal)) {
          const message = toMessage(frame);
          if (!message) continue;
          if (message.id) lastEventId = message.id;
          yield message;
        }
      } catch (error) {
        if (opts.signal?.aborted) return;
        // A 4xx will not get better by reconnecting.
        if (error instanceof DroverApiError && error.status < 500) throw error;
      }
      if (opts.signal?.aborted) return;
      await sleep(opts.reconnectDelayMs ?? 1_000, opts.signal).catch(() => undefined);
      if (opts.signal?.aborted) return;
    }
  }

  async function waitForJob(id: string, opts: WaitOptions = {}): Promise<JobWithAttempts> {
    const controller = new AbortController();
    const timer = opts.timeoutMs === undefined ? undefined : setTimeout(() => controller.abort(new DroverTimeoutError(`job ${id} did not finish within ${opts.timeoutMs} ms`)), opts.timeoutMs);
    const signal = anySignal(opts.signal, controller.signal)!;
    let lastState: string | null = null;
    const getJob = () => http.request<JobWithAttempts>('GET', `/v1/jobs/${enc(id)}`, { idempotent: true, signal });
    try {
      let lastEventId: string | undefined;
      for (;;) {
        try {
          // Subscribe first, then look: a change between the two is on the stream, not lost.
          const frames = await connect(streamPath({ job: id }), lastEventId, signal);
          const job = await getJob();
          lastState = job.state;
          if (isTerminal(job.state)) return job;
          for await (const frame of frames) {
            const message = toMessage(frame);
            if (!message) continue;
            if (message.id) lastEventId = message.id;
            if (message.event === 'gap') {
              // Missed messages: ask the source of truth instead.
              const now = await getJob();
              lastState = now.state;
              if (isTerminal(now.state)) return now;
            } else if (message.event === 'job' && message.data.id === id) {
              lastState = message.data.state;
              if (isTerminal(message.data.state)) return await getJob();
            }
          }
        } catch (error) {
          if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : error;
          if (error instanceof DroverApiError && error.status < 500) throw error;
        }
        // The stream dropped (node restart, proxy timeout): reconnect and look again.
        await sleep(1_000, signal);
      }
    } catch (error) {
      if (error instanceof DroverTimeoutError) throw new DroverTimeoutError(error.message, lastState);
      throw error;
    } finally {
      clearTimeout(timer);
      controller.abort();
    }
  }

  return {
    async sendEvent(event, opts = {}) {
      const [withId] = withIds([event]);
      // The id makes the send idempotent, so even a network error is safe to retry.
      return singleEvents.submit(JSON.stringify(withId), withId!.id, true, opts.signal);
    },
    async sendEvents(events, opts = {}) {
      const body = withIds(events);
      // Ids make the send idempotent, so even a network error is safe to retry.
      const result = await http.request<{ events: SentEvent[] }>('POST', '/v1/events', { body: { events: body }, idempotent: true, ...(opts.signal ? { signal: opts.signal } : {}) });
      return result.events;
    },
    async enqueue(job, opts = {}) {
      // Serialised now: a payload that is not JSON fails this call only, not the batch it would join.
      return singleJobs.submit(JSON.stringify(jobBody(job)), job.idempotencyKey, job.idempotencyKey !== undefined, opts.signal);
    },
    async enqueueMany(jobs, opts = {}) {
      const idempotent = jobs.every((j) => j.idempotencyKey !== undefined);
      const result = await http.request<{ jobs: EnqueuedJob[] }>('POST', '/v1/jobs', { body: { jobs: jobs.map(jobBody) }, idempotent, ...(opts.signal ? { signal: opts.signal } : {}) });
      return result.jobs;
    },
    getJob: (id, opts = {}) => http.request<JobWithAttempts>('GET', `/v1/jobs/${enc(id)}`, { idempotent: true, ...(opts.signal ? { signal: opts.signal } : {}) }),
    getEvent: (id, opts = {}) => http.request<EventWithJobs>('GET', `/v1/events/${enc(id)}`, { idempotent: true, ...(opts.signal ? { signal: opts.signal } : {}) }),
    async *listJobs(filter = {}, opts = {}) {
      for await (const page of listJobPages(filter, opts)) yield* page.jobs;
    },
    listJobPages,
    cancel: (id, opts = {}) => http.request<Job>('POST', `/v1/jobs/${enc(id)}/cancel`, { ...(opts.signal ? { signal: opts.signal } : {}) }),
    retry: (id, opts = {}) => http.request<Job>('POST', `/v1/jobs/${enc(id)}/retry`, { ...(opts.signal ? { signal: opts.signal } : {}) }),
    listInterrupts: (filter = {}, opts = {}) =>
      http.request<InterruptPage>('GET', '/v1/interrupts', { query: { ...filter }, idempotent: true, ...(opts.signal ? { signal: opts.signal } : {}) }),
    getInterrupt: (id, opts = {}) => http.request<Interrupt>('GET', `/v1/interrupts/${enc(id)}`, { idempotent: true, ...(opts.signal ? { signal: opts.signal } : {}) }),
    resumeInterrupt: (id, input, opts = {}) =>
      http.request<{ interrupt: Interrupt; job: Job }>('POST', `/v1/interrupts/${enc(id)}/resume`, { body: { input }, ...(opts.signal ? { signal: opts.signal } : {}) }),
    waitForJob,
    stream,
    request: <T>(method: 'GET' | 'POST', path: string, body?: unknown, opts: { signal?: AbortSignal } = {}) =>
      http.request<T>(method, path, { ...(body === undefined ? {} : { body }), idempotent: method === 'GET', ...(opts.signal ? { signal: opts.signal } : {}) }),
  };
}
