/**
 * Group commit: write operations submitted by many callers in one event-loop
 * tick run in ONE transaction, so `synchronous=FULL` costs one fsync per batch
 * instead of one per call. That is what lets a single SQLite file keep up with
 * thousands of lease/complete calls per second.
 *
 * Each operation runs in its own savepoint inside the batch: one that throws
 * (a full queue, a constraint) rolls back only itself and rejects only its own
 * promise. If the COMMIT fails, every operation in the batch is rejected.
 *
 * Operations also report side effects (`E`: queue depth deltas, queues that
 * got due work). An operation's effects count only once its savepoint has
 * succeeded, and the batch's only once it has committed, so in-memory state
 * never runs ahead of what is on disk.
 */
import type Database from 'better-sqlite3';
import { DroverError } from '../../core/errors.js';

/** Effects bookkeeping supplied by the engine. */
export interface EffectsPolicy<E> {
  create(): E;
  /** Fold a succeeded operation's effects into the batch's. */
  merge(into: E, from: E): void;
  /** Called once per committed batch, after its callers' promises resolved. */
  committed(effects: E): void;
  /** Maps an error before its caller sees it (SQLite codes onto coded errors). */
  error?(error: unknown): unknown;
  /**
   * Called once per batch after its callers were answered: the errors it
   * raised (the COMMIT's, or those of single operations) and whether it
   * committed. The engine tells store faults (disk full) from these.
   */
  settled?(errors: readonly unknown[], committed: boolean): void;
  /** Called once per committed batch with how long BEGIN to COMMIT (the fsync included) took. */
  timed?(seconds: number, ops: number): void;
}

/**
 * A write operation: runs synchronously inside the batch transaction.
 * `own` collects this operation's effects; `batch` holds those of operations
 * already applied in this batch (read it to see uncommitted depth, for example).
 */
export type WriteOp<E, T> = (own: E, batch: Readonly<E>) => T;

export interface GroupCommitStats {
  /** Transactions committed. */
  readonly batches: number;
  /** Operations run (succeeded or failed) in committed batches. */
  readonly ops: number;
  /** Operations in the most recent batch. */
  readonly lastBatchSize: number;
  /** Batches whose COMMIT failed (every operation in them was rejected). */
  readonly failedCommits: number;
}

interface Pending<E> {
  op: WriteOp<E, unknown>;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** Upper bound on operations per transaction, so one batch never holds the write lock for long. */
const MAX_BATCH_OPS = 2000;

/**
 * @example
 * const writes = new GroupCommit(db, { create: () => [], merge: (a, b) => a.push(...b), committed: (all) => notify(all) });
 * const id = await writes.submit((own) => { own.push('default'); return insert.run(...).lastInsertRowid; });
 */
export class GroupCommit<E> {
  #pending: Pending<E>[] = [];
  #scheduled = false;
  #closed = false;
  #drainWaiters: Array<() => void> = [];
  #stats = { batches: 0, ops: 0, lastBatchSize: 0, failedCommits: 0 };
  readonly #runBatch: Database.Transaction<(ops: readonly Pending<E>[], batch: E, outcomes: Outcome[]) => void>;

  constructor(
    db: Database.Database,
    private readonly policy: EffectsPolicy<E>,
  ) {
    // A nested db.transaction runs as a SAVEPOINT inside the outer one.
    const savepoint = db.transaction((op: WriteOp<E, unknown>, own: E, batch: E) => op(own, batch));
    this.#runBatch = db.transaction((ops: readonly Pending<E>[], batch: E, outcomes: Outcome[]) => {
      for (const pending of ops) {
        const own = policy.create();
        try {
          const value = savepoint(pending.op, own, batch);
          policy.merge(batch, own);
          outcomes.push({ ok: true, value });
        } catch (error) {
          // Some errors (SQLITE_FULL, SQLITE_IOERR, ...) make SQLite roll back
          // the whole transaction; later ops would then run in autocommit mode.
          // Abort the batch instead so nobody is told "committed".
          if (!db.inTransaction) throw error;
          outcomes.push({ ok: false, error });
        }
      }
    });
  }

  get stats(): GroupCommitStats {
    return { ...this.#stats };
  }

  /** Queue a write; it runs in the next batch (this or the next tick). */
  submit<T>(op: WriteOp<E, T>): Promise<T> {
    if (this.#closed) {
      return Promise.reject(new DroverError('store_unavailable', 'the store is closed'));
    }
    return new Promise<T>((resolve, reject) => {
      this.#pending.push({ op, resolve: resolve as (value: unknown) => void, reject });
      this.#schedule();
    });
  }

  /** Refuse new writes and wait until the queued ones have run. */
  close(): Promise<void> {
    this.#closed = true;
    if (this.#pending.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    // setImmediate, not queueMicrotask: it lets every caller woken by the same
    // I/O phase (HTTP requests, finished jobs) add its op before the batch runs.
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#scheduled = false;
    const ops = this.#pending.splice(0, MAX_BATCH_OPS);
    if (this.#pending.length > 0) this.#schedule();

    if (ops.length > 0) {
      const batch = this.policy.create();
      const outcomes: Outcome[] = [];
      let committed = false;
      const errors: unknown[] = [];
      const mapped = (error: unknown) => (this.policy.error ? this.policy.error(error) : error);
      const started = performance.now();
      try {
        this.#runBatch.immediate(ops, batch, outcomes);
        committed = true;
        this.policy.timed?.((performance.now() - started) / 1000, ops.length);
      } catch (error) {
        this.#stats.failedCommits++;
        errors.push(error);
        const answer = mapped(error);
        for (const pending of ops) pending.reject(answer);
      }
      if (committed) {
        this.#stats.batches++;
        this.#stats.ops += ops.length;
        this.#stats.lastBatchSize = ops.length;
        ops.forEach((pending, i) => {
          const outcome = outcomes[i];
          if (outcome?.ok) pending.resolve(outcome.value);
          else {
            if (outcome) errors.push(outcome.error);
            pending.reject(outcome ? mapped(outcome.error) : new Error('operation did not run'));
          }
        });
        this.policy.committed(batch);
      }
      this.policy.settled?.(errors, committed);
    }

    if (this.#pending.length === 0 && this.#drainWaiters.length > 0) {
      const waiters = this.#drainWaiters;
      this.#drainWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }
}
