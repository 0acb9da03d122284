/**
 * Coalescing of single intake calls: every `enqueue` (or `sendEvent`) made in
 * the same tick goes out as ONE batch request (`{jobs: [...]}`), which the
 * server commits in one transaction. Sixteen producers awaiting their calls
 * in a loop then cost one round trip and one commit per sixteen jobs, not
 * sixteen of each.
 *
 * Each call keeps its own answer, exactly as if it had been sent alone:
 * - A batch is all-or-nothing on the server, so one call's 4xx (a validation
 *   error, an unknown handler, a full queue) would fail its neighbours. When a
 *   batch is refused with a 4xx, every call in it is sent again on its own
 *   (nothing of the batch was written), and each gets its own answer. Auth
 *   errors (401, 403) are the same for every call and are not resent.
 * - A 5xx or a network failure is what each call would have met alone: every
 *   call in the batch gets it. The batch is resent after a network failure
 *   only when every call in it was safe to resend alone (idempotent).
 * - Two calls with the same idempotency key (or event id) never share a
 *   batch: the second goes in the next one and is answered as a replay.
 * - A call whose `signal` aborts is rejected with the signal's reason at once;
 *   if its batch was already sent, the job may still be written, as with an
 *   aborted single request.
 * - A call alone in its tick is sent as a single request, unchanged.
 */
import { DroverApiError } from './errors.js';
import type { Transport } from './http.js';

/** Serialized bytes per batch at most: well under the server's default body limit (1 MiB). */
const MAX_BATCH_BYTES = 512 * 1024;
/** Items per batch at most (the server's limit). */
const MAX_BATCH_ITEMS = 1000;

export interface CoalescerOptions {
  /** `/v1/jobs` or `/v1/events`. */
  path: string;
  /** The batch body's array field: `jobs` or `events`. */
  field: string;
}

interface Call {
  json: string;
  /** Idempotency key or event id: two calls with the same one never share a batch. */
  key: string | undefined;
  idempotent: boolean;
  signal: AbortSignal | undefined;
  resolve(value: unknown): void;
  reject(error: unknown): void;
  /** Settled already (aborted): later answers are dropped. */
  settled: boolean;
  onAbort: (() => void) | undefined;
}

export class Coalescer<T> {
  #queue: Call[] = [];
  #scheduled = false;
  readonly #prefix: string;

  constructor(
    private readonly http: Transport,
    private readonly options: CoalescerOptions,
  ) {
    this.#prefix = `{"${options.field}":[`;
  }

  /**
   * Queue one call whose body is `json`; resolves with its own answer.
   * @example
   * const jobs = new Coalescer<EnqueuedJob>(transport, { path: '/v1/jobs', field: 'jobs' });
   * const job = await jobs.submit(JSON.stringify({ handler: 'email' }), undefined, false);
   */
  submit(json: string, key: string | undefined, idempotent: boolean, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<T>((resolve, reject) => {
      const call: Call = { json, key, idempotent, signal, resolve: resolve as (value: unknown) => void, reject, settled: false, onAbort: undefined };
      if (signal) {
        call.onAbort = () => {
          if (call.settled) return;
          call.settled = true;
          const i = this.#queue.indexOf(call);
          if (i >= 0) this.#queue.splice(i, 1);
          reject(signal.reason);
        };
        signal.addEventListener('abort', call.onAbort, { once: true });
      }
      this.#queue.push(call);
      if (!this.#scheduled) {
        this.#scheduled = true;
        // After the current cascade of promise callbacks: every caller woken by the last answer has called again.
        process.nextTick(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    while (this.#queue.length > 0) void this.#send(this.#take());
  }

  /** The next batch: queue order, within the size limits, no key twice. */
  #take(): Call[] {
    const queue = this.#queue;
    if (queue.length === 1) {
      this.#queue = [];
      return queue;
    }
    const batch: Call[] = [];
    const rest: Call[] = [];
    const keys = new Set<string>();
    let bytes = 0;
    for (const call of queue) {
      const fits = batch.length < MAX_BATCH_ITEMS && (batch.length === 0 || bytes + call.json.length < MAX_BATCH_BYTES);
      if (!fits || (call.key !== undefined && keys.has(call.key))) {
        rest.push(call);
        continue;
      }
      if (call.key !== undefined) keys.add(call.key);
      bytes += call.json.length + 1;
      batch.push(call);
    }
    this.#queue = rest;
    return batch;
  }

  async #send(batch: Call[]): Promise<void> {
    if (batch.length === 1) return this.#sendAlone(batch[0]!);
    let answers: unknown[];
    try {
      const body = await this.http.request<Record<string, unknown[]>>('POST', this.options.path, {
        json: `${this.#prefix}${batch.map((c) => c.json).join(',')}]}`,
        idempotent: batch.every((c) => c.idempotent),
      });
      answers = body[this.options.field] ?? [];
      if (answers.length !== batch.length) throw new Error(`POST ${this.options.path}: the server answered ${answers.length} results for a batch of ${batch.length}`);
    } catch (error) {
      if (error instanceof DroverApiError && error.status >= 400 && error.status < 500 && error.status !== 401 && error.status !== 403) {
        // All-or-nothing refusal: nothing was written; let each call meet its own answer.
        await Promise.all(batch.map((call) => (call.settled ? undefined : this.#sendAlone(call))));
        return;
      }
      for (const call of batch) settle(call, false, error);
      return;
    }
    for (let i = 0; i < batch.length; i++) settle(batch[i]!, true, answers[i]);
  }

  async #sendAlone(call: Call): Promise<void> {
    try {
      const answer = await this.http.request<T>('POST', this.options.path, { json: call.json, idempotent: call.idempotent, ...(call.signal ? { signal: call.signal } : {}) });
      settle(call, true, answer);
    } catch (error) {
      settle(call, false, error);
    }
  }
}

function settle(call: Call, ok: boolean, value: unknown): void {
  if (call.settled) return;
  call.settled = true;
  if (call.onAbort) call.signal!.removeEventListener('abort', call.onAbort);
  if (ok) call.resolve(value);
  else call.reject(value);
}
