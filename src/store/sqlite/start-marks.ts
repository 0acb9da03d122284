/**
 * Start marks (`StorageEngine.start`): the store records that a job's handler
 * is about to run, and the runtime waits for it before running the handler.
 *
 * They do not go through the group commit. Its batches end in an fsync and
 * flush once per event-loop turn; a handler waiting for one would run one job
 * per slot per fsync, where a quick handler otherwise runs its whole lease-ahead
 * buffer in one turn (measured: drain throughput fell several-fold). A mark
 * only has to survive the process, not the machine: it is there so a handler
 * that kills its node is counted as a crash. So marks are written in a small
 * transaction of their own as soon as the current microtasks have run (every
 * job started in the same cascade shares it), with `synchronous = NORMAL`:
 * in WAL mode the commit is a write to the WAL, no fsync, which the OS keeps
 * when the process dies. The next group commit's fsync makes it durable. A
 * mark lost to a power cut only leaves one crash uncounted.
 */
import type Database from 'better-sqlite3';
import { DroverError } from '../../core/errors.js';
import type { StartResult } from '../engine.js';

interface Pending {
  mark: () => StartResult;
  resolve(result: StartResult): void;
  reject(error: unknown): void;
}

export class StartMarks {
  #pending: Pending[] = [];
  #closed = false;
  readonly #run: Database.Transaction<(batch: readonly Pending[]) => StartResult[]>;
  readonly #noSync: Database.Statement;
  readonly #restoreSync: Database.Statement;

  /** `viaGroupCommit`: the fallback when a transaction is open on the connection (never expected). */
  constructor(
    private readonly db: Database.Database,
    private readonly viaGroupCommit: (mark: () => StartResult) => Promise<StartResult>,
  ) {
    const level = Number(db.pragma('synchronous', { simple: true }));
    this.#noSync = db.prepare('PRAGMA synchronous = NORMAL');
    this.#restoreSync = db.prepare(`PRAGMA synchronous = ${level}`);
    this.#run = db.transaction((batch: readonly Pending[]) => batch.map((p) => p.mark()));
  }

  add(mark: () => StartResult): Promise<StartResult> {
    if (this.#closed) return Promise.reject(new DroverError('store_unavailable', 'the store is closed'));
    return new Promise<StartResult>((resolve, reject) => {
      this.#pending.push({ mark, resolve, reject });
      if (this.#pending.length === 1) queueMicrotask(() => this.#flush());
    });
  }

  /** Write what is queued now; later marks are refused. */
  close(): void {
    this.#flush();
    this.#closed = true;
  }

  #flush(): void {
    const batch = this.#pending.splice(0);
    if (batch.length === 0) return;
    if (this.db.inTransaction) {
      for (const p of batch) this.viaGroupCommit(p.mark).then(p.resolve, p.reject);
      return;
    }
    let results: StartResult[];
    try {
      this.#noSync.run();
      try {
        results = this.#run.immediate(batch);
      } finally {
        this.#restoreSync.run();
      }
    } catch (error) {
      for (const p of batch) p.reject(error);
      return;
    }
    batch.forEach((p, i) => p.resolve(results[i]!));
  }
}
