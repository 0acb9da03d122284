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
 *
 * With a `DeferredSync` (wal-sync.ts) the COMMIT only writes the WAL and the
 * fsync runs on another thread: the event loop goes on (handlers run, the
 * next batch is written) while the disk works, where a `synchronous=FULL`
 * COMMIT would block it for the whole fsync. Nothing is answered before its
 * batch is on disk: callers, `durable` effects and `whenDurable()` waiters
 * (the engine's reads) wait for the sync. Only the writes that follow (later
 * batches, on this connection) see a batch before that, and they are answered
 * after a later sync, which covers every earlier WAL frame too. A failed sync
 * fails its batches and every write after it: what is on disk is unknown.
 * A batch that answered nobody early, with no sync out, is synced on the event
 * loop instead (`DeferredSync.syncNow`): nothing would run meanwhile.
 * A batch holding an enqueue (a feeding write) committed while the sync out
 * covers none (a completion's) gets a sync of its own at once, up to
 * `DeferredSync.slots` at a time: the one out covers only the frames written
 * before it began, and waiting for it made a job enqueued just after another's
 * completion wait for two syncs (docs/benchmarks.md, "SQLite enqueue→start
 * p99, stage by stage"). Other batches wait for the sync out, as a drain's
 * and an intake burst's do: their syncs stay as few as before.
 */
import type Database from 'better-sqlite3';
import { DroverError } from '../../core/errors.js';
import { SavepointJournal } from './savepoint-journal.js';

/** Effects bookkeeping supplied by the engine. */
export interface EffectsPolicy<E> {
  create(): E;
  /** Fold a succeeded operation's effects into the batch's. */
  merge(into: E, from: E): void;
  /**
   * Called once per committed batch, before the next batch runs (the writes
   * that follow see the batch; with a deferred sync it may not be on disk yet).
   */
  committed(effects: E): void;
  /** Called once per batch on disk, after its callers were answered (without a deferred sync, right after `committed`). */
  durable?(effects: E): void;
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
  mode: SubmitMode;
  /** Answered at commit (an `atCommit` op that saw only durable feeding writes). */
  early?: boolean;
}

/**
 * How a write is answered with a deferred sync. `feeds`: it may make work
 * leasable (intake, a retry, a release); false for writes that only end work
 * (a completion) or take it (a lease). `atCommit`: answer it once its batch
 * committed, without waiting for the sync, provided no feeding write before
 * it (in its batch or an earlier one) is still unsynced: its answer may then
 * rest on nothing that a power cut could undo but itself. Only for a write
 * whose answer stays inside this process, which the cut ends too
 * (sqlite-engine.ts `lease`).
 */
export interface SubmitMode {
  /** Read once the op has run (it may set it: settle-queue.ts). */
  feeds: boolean;
  atCommit: boolean;
}

const DEFAULT_MODE: SubmitMode = Object.freeze({ feeds: true, atCommit: false });

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/**
 * Commits made durable off the event loop (wal-sync.ts). `defer` and
 * `restore` run around each batch: its COMMIT writes the WAL without syncing
 * it. `sync` resolves once everything committed before the call is on disk.
 */
export interface DeferredSync {
  defer(): void;
  restore(): void;
  sync(): Promise<void>;
  /**
   * How many `sync` calls may be out at once (default 1). Each must report
   * every write error since its own previous call, whatever the others saw
   * (wal-sync.ts: a descriptor each).
   */
  readonly slots?: number;
  /**
   * The same sync on the event loop, as a FULL commit's own (throws if it
   * failed). Used for a batch that answered nobody early with nothing else
   * unsynced: the event loop has no jobs to run meanwhile, and the pool's hop
   * (a thread woken, a callback queued) only made its callers wait longer.
   */
  syncNow?(): void;
}

/** A committed batch waiting for its sync. */
interface Unsynced<E> {
  ops: readonly Pending<E>[];
  outcomes: Outcome[];
  effects: E;
  started: number;
  seq: number;
  /** Holds a write that may have made work leasable. */
  feeds: boolean;
}

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
  /** Committed batches whose sync has not returned, oldest first; syncs out; the last batch a sync out covers. */
  #unsynced: Array<Unsynced<E>> = [];
  #syncsOut = 0;
  #syncedUpTo = 0;
  /** Syncs out that cover a feeding write: none may be joined by a second. */
  #feedingSyncsOut = 0;
  /** Batches committed, and of those the ones on disk (the same count without a deferred sync). */
  #committedSeq = 0;
  #durableSeq = 0;
  #durableWaiters: Array<{ seq: number; resolve(): void; reject(error: unknown): void }> = [];
  /** Committed batches not yet on disk that hold a feeding write (`SubmitMode.feeds`). */
  #feedingUnsynced = 0;
  /** A sync failed: the answer for every write from then on. */
  #broken: unknown = null;
  readonly #runBatch: Database.Transaction<(ops: readonly Pending<E>[], batch: E, outcomes: Outcome[]) => void>;
  /** Keeps each write's savepoint journal in memory while a batch runs (savepoint-journal.ts). */
  readonly #journal: SavepointJournal;

  constructor(
    db: Database.Database,
    private readonly policy: EffectsPolicy<E>,
    private readonly deferred: DeferredSync | null = null,
  ) {
    this.#journal = new SavepointJournal(db);
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

  /**
   * Null when every committed batch is on disk; else a promise that settles
   * once the batches committed so far are (rejected if their sync failed).
   * The engine's reads wait for it, so nobody sees a write before it is durable.
   */
  whenDurable(): Promise<void> | null {
    if (this.#broken !== null) return Promise.reject(this.#brokenError());
    if (this.#durableSeq >= this.#committedSeq) return null;
    const seq = this.#committedSeq;
    return new Promise((resolve, reject) => this.#durableWaiters.push({ seq, resolve, reject }));
  }

  /**
   * Queue a write; it runs in the next batch (this or the next tick).
   * `mode`: how it is answered with a deferred sync (`SubmitMode`).
   */
  submit<T>(op: WriteOp<E, T>, mode: SubmitMode = DEFAULT_MODE): Promise<T> {
    if (this.#closed) {
      return Promise.reject(new DroverError('store_unavailable', 'the store is closed'));
    }
    if (this.#broken !== null) return Promise.reject(this.#brokenError());
    return new Promise<T>((resolve, reject) => {
      this.#pending.push({ op, resolve: resolve as (value: unknown) => void, reject, mode });
      this.#schedule();
    });
  }

  /** Refuse new writes and wait until the queued ones have run and are on disk (or failed). */
  close(): Promise<void> {
    this.#closed = true;
    if (this.#idle()) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  #idle(): boolean {
    return this.#pending.length === 0 && this.#unsynced.length === 0 && this.#syncsOut === 0;
  }

  #notifyIdle(): void {
    if (!this.#idle() || this.#drainWaiters.length === 0) return;
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const resolve of waiters) resolve();
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

    if (ops.length > 0 && this.#broken !== null) {
      for (const pending of ops) pending.reject(this.#brokenError());
    } else if (ops.length > 0) {
      const batch = this.policy.create();
      const outcomes: Outcome[] = [];
      let committed = false;
      const errors: unknown[] = [];
      const started = performance.now();
      try {
        this.deferred?.defer();
        try {
          this.#journal.around(() => this.#runBatch.immediate(ops, batch, outcomes));
        } finally {
          this.deferred?.restore();
        }
        committed = true;
      } catch (error) {
        this.#stats.failedCommits++;
        errors.push(error);
        const answer = this.#mapped(error);
        for (const pending of ops) pending.reject(answer);
      }
      if (committed) {
        this.#stats.batches++;
        this.#stats.ops += ops.length;
        this.#stats.lastBatchSize = ops.length;
        this.#committedSeq++;
        // An operation that failed wrote nothing (its savepoint was undone): answered now.
        // Whether a feeding write before the op is unsynced (earlier batches, then this one), and whether this batch holds one.
        let feeding = this.#feedingUnsynced > 0;
        let batchFeeds = false;
        let answeredEarly = false;
        ops.forEach((pending, i) => {
          const outcome = outcomes[i];
          if (outcome?.ok) {
            if (this.deferred && pending.mode.atCommit && !feeding) {
              pending.early = answeredEarly = true;
              pending.resolve(outcome.value);
            }
            if (pending.mode.feeds) feeding = batchFeeds = true;
            return;
          }
          if (outcome) errors.push(outcome.error);
          pending.reject(outcome ? this.#mapped(outcome.error) : new Error('operation did not run'));
        });
        this.policy.committed(batch);
        const done: Unsynced<E> = { ops, outcomes, effects: batch, started, seq: this.#committedSeq, feeds: batchFeeds };
        if (this.deferred) {
          if (batchFeeds) this.#feedingUnsynced++;
          this.#unsynced.push(done);
          if (!answeredEarly && this.#syncsOut === 0 && this.#unsynced.length === 1 && this.deferred.syncNow) this.#syncInline();
          else this.#syncNext();
        } else {
          this.#answer([done]);
        }
      }
      // A sync that failed here has reported itself (#syncFailed): this batch cannot count as written.
      this.policy.settled?.(errors, committed && this.#broken === null);
    }
    this.#notifyIdle();
  }

  #mapped(error: unknown): unknown {
    return this.policy.error ? this.policy.error(error) : error;
  }

  /** Batches on disk: answer their callers, then their durable effects and the reads waiting for them. */
  #answer(batches: readonly Unsynced<E>[]): void {
    for (const { ops, outcomes, effects, started, feeds } of batches) {
      if (feeds && this.deferred) this.#feedingUnsynced--;
      ops.forEach((pending, i) => {
        const outcome = outcomes[i];
        if (outcome?.ok && !pending.early) pending.resolve(outcome.value);
      });
      this.policy.timed?.((performance.now() - started) / 1000, ops.length);
      this.policy.durable?.(effects);
    }
    this.#durableSeq = batches[batches.length - 1]!.seq;
    const waiting = this.#durableWaiters;
    this.#durableWaiters = waiting.filter((w) => w.seq > this.#durableSeq);
    for (const w of waiting) if (w.seq <= this.#durableSeq) w.resolve();
  }

  /**
   * A sync for every batch committed before it starts, unless one out covers
   * them or may not be joined (`#mayJoin`; the first back starts it). A later
   * sync may return first: it answers the earlier batches too.
   */
  #syncNext(): void {
    const upTo = this.#committedSeq;
    if (upTo <= this.#syncedUpTo || this.#broken !== null) return;
    const feeds = this.#unsynced.some((batch) => batch.seq > this.#syncedUpTo && batch.feeds);
    if (this.#syncsOut > 0 && !this.#mayJoin(feeds)) return;
    this.#syncsOut++;
    if (feeds) this.#feedingSyncsOut++;
    this.#syncedUpTo = upTo;
    const returned = () => {
      this.#syncsOut--;
      if (feeds) this.#feedingSyncsOut--;
    };
    this.deferred!.sync().then(
      () => {
        returned();
        // A sync that failed meanwhile failed these batches too (#syncFailed).
        if (this.#broken === null) {
          const done = this.#unsynced.findIndex((batch) => batch.seq > upTo);
          const batches = this.#unsynced.splice(0, done === -1 ? this.#unsynced.length : done);
          if (batches.length > 0) this.#answer(batches);
          this.#syncNext();
        }
        this.#notifyIdle();
      },
      (error: unknown) => {
        returned();
        if (this.#broken === null) this.#syncFailed(this.#unsynced.splice(0), error);
        this.#notifyIdle();
      },
    );
  }

  /** A second sync beside the one out: for an enqueue's batch (its caller and its job wait) while the one out covers none. */
  #mayJoin(feeds: boolean): boolean {
    return feeds && this.#feedingSyncsOut === 0 && this.#syncsOut < (this.deferred!.slots ?? 1);
  }

  /** The one batch unsynced, synced on the event loop (`DeferredSync.syncNow`). */
  #syncInline(): void {
    const batches = this.#unsynced.splice(0);
    this.#syncedUpTo = this.#committedSeq;
    try {
      this.deferred!.syncNow!();
    } catch (error) {
      this.#syncFailed(batches, error);
      return;
    }
    this.#answer(batches);
  }

  #syncFailed(batches: readonly Unsynced<E>[], error: unknown): void {
    this.#broken = error;
    // Neither these batches nor the ones committed since can be said to be on disk.
    const answer = this.#brokenError();
    for (const { ops, outcomes } of [...batches, ...this.#unsynced.splice(0)]) {
      ops.forEach((pending, i) => {
        if (outcomes[i]?.ok) pending.reject(answer);
      });
    }
    for (const w of this.#durableWaiters.splice(0)) w.reject(answer);
    this.policy.settled?.([error], false);
  }

  #brokenError(): unknown {
    return this.#mapped(
      new DroverError('store_unavailable', 'the store could not make its committed writes durable (the WAL fsync failed); restart the node to recover from what is on disk', {
        cause: this.#broken,
      }),
    );
  }
}
