/**
 * Plain enqueues (no idempotency key) made while the previous one is in
 * flight go out together as ONE statement (intake.ts `enqueuePlain`;
 * batching in one-in-flight.ts): every enqueue adds to its queue's depth
 * counter row, which stays locked until the commit, so one statement per
 * request would serialise concurrent requests on that row at one commit each.
 *
 * A batch that would overflow a limited queue fails as a whole; its calls are
 * then replayed one by one, so each is refused or accepted on its own.
 */
import { QueueFullError } from '../../core/errors.js';
import type { JobRow, LeasedJob, NewJob } from '../../core/types.js';
import type { EnqueueOptions, IntakeLease, QueueLimit } from '../engine.js';
import { OneInFlight } from './one-in-flight.js';
import type { PlainInserted } from './intake.js';
import type { Woken } from '../woken.js';

export type PlainInsert = (jobs: readonly NewJob[], options: EnqueueOptions | undefined) => Promise<PlainInserted>;

/** One call's answer: its rows, and the jobs its insert leased (null: none). */
export interface PlainAnswer {
  rows: JobRow[];
  leased: Array<LeasedJob | null> | null;
}

interface Pending {
  jobs: readonly NewJob[];
  options: EnqueueOptions | undefined;
  resolve(answer: PlainAnswer): void;
  reject(error: unknown): void;
}

/** Most jobs in one statement; a larger call goes alone. */
const MAX_BATCH_JOBS = 1000;

export class EnqueueBatch {
  readonly #calls = new OneInFlight<Pending>(takeUpTo(MAX_BATCH_JOBS), (batch) => this.#run(batch));
  readonly #stats = { statements: 0, calls: 0 };

  /** `woke`: the due work (queues, handlers), told after the commit. */
  constructor(
    private readonly insert: PlainInsert,
    private readonly woke: (woken: Woken) => void,
  ) {}

  /** Insert statements sent and the calls they carried (replays of an overflowing batch count again). */
  get stats(): { statements: number; calls: number } {
    return { ...this.#stats };
  }

  submit(jobs: readonly NewJob[], options: EnqueueOptions | undefined): Promise<PlainAnswer> {
    return new Promise<PlainAnswer>((resolve, reject) => this.#calls.push({ jobs, options, resolve, reject }));
  }

  /** Wait for the calls already submitted. */
  drain(): Promise<void> {
    return this.#calls.drain();
  }

  async #run(batch: Pending[]): Promise<void> {
    if (batch.length === 1) return this.#alone(batch[0]!);
    let result: PlainInserted;
    this.#stats.statements++;
    this.#stats.calls += batch.length;
    try {
      result = await this.insert(
        batch.flatMap((p) => p.jobs),
        { queueLimits: mergedLimits(batch), ...mergedLease(batch) },
      );
    } catch (error) {
      if (!(error instanceof QueueFullError)) {
        for (const p of batch) p.reject(error);
        return;
      }
      // Together they overflow a queue: each call on its own, in order, so the ones that fit get in.
      for (const p of batch) await this.#alone(p);
      return;
    }
    this.woke(result.woken);
    // Rows come back in input order: each call takes its own slice.
    let at = 0;
    for (const p of batch) {
      p.resolve({ rows: result.rows.slice(at, at + p.jobs.length), leased: result.leased?.slice(at, at + p.jobs.length) ?? null });
      at += p.jobs.length;
    }
  }

  async #alone(p: Pending): Promise<void> {
    this.#stats.statements++;
    this.#stats.calls++;
    try {
      const { rows, woken, leased } = await this.insert(p.jobs, p.options);
      this.woke(woken);
      p.resolve({ rows, leased });
    } catch (error) {
      p.reject(error);
    }
  }
}

/** Calls, in order, while their jobs fit in `max` (a larger first call goes alone). */
function takeUpTo(max: number): (pending: readonly Pending[]) => number {
  return (pending) => {
    let jobs = pending[0]?.jobs.length ?? 0;
    let take = 1;
    while (take < pending.length && jobs + pending[take]!.jobs.length <= max) jobs += pending[take++]!.jobs.length;
    return take;
  };
}

/** The calls' intake leases as one, parallel to the batch's jobs (a call without one, or another worker's, leases none). */
function mergedLease(batch: readonly Pending[]): { lease?: IntakeLease } {
  const workerId = batch.find((p) => p.options?.lease)?.options?.lease?.workerId;
  if (workerId === undefined) return {};
  const leaseMs: Array<number | null> = [];
  for (const p of batch) {
    const lease = p.options?.lease?.workerId === workerId ? p.options.lease : undefined;
    for (let n = 0; n < p.jobs.length; n++) leaseMs.push(lease?.leaseMs[n] ?? null);
  }
  return { lease: { workerId, leaseMs } };
}

/** The limits of every call in the batch (they come from one config; the tighter one wins should two differ). */
function mergedLimits(batch: readonly Pending[]): Map<string, QueueLimit> {
  const limits = new Map<string, QueueLimit>();
  for (const p of batch) {
    for (const [queue, limit] of p.options?.queueLimits ?? []) {
      const known = limits.get(queue);
      if (!known || limit.maxDepth < known.maxDepth) limits.set(queue, limit);
    }
  }
  return limits;
}
