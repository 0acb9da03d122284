/**
 * The SQLite engine's core: the one connection and its write path, which every
 * role part of the engine shares (sqlite-engine.ts wires them).
 *
 * - Writes go through a group commit: every write submitted in one event-loop
 *   tick shares one transaction and one fsync, each in its own savepoint.
 * - Reads run directly on the connection; they never see a half-applied batch
 *   because a batch runs synchronously from start to COMMIT, and they wait for
 *   the syncs of the writes committed before them (`visible`).
 * - Committed batches update the in-memory queue depths at once and wake the
 *   engine's listeners once durable; failed writes tell the disk-space watch.
 * - `close` stops it all in order, then closes the file and drops the lock.
 */
import type Database from 'better-sqlite3';
import { DroverError } from '../../core/errors.js';
import type { MigrateOptions, MigrationStatus, ReclaimedJob, WorkListener } from '../engine.js';
import { checkpointWal, isInMemory, readSettings, type ConnectionSettings } from './connection.js';
import { DiskSpace } from './disk-space.js';
import type { DurableContext } from './durable.js';
import { isTransientStoreError, toStoreError } from './errors.js';
import { GroupCommit, type GroupCommitStats } from './group-commit.js';
import { LeaseMemo } from './lease-memo.js';
import { migrateSqlite } from './migrator.js';
import type { PidfileLock } from './pidfile-lock.js';
import { PreparedStatements } from './prepared.js';
import { createEffects, mergeEffects, QueueDepths, type WriteEffects } from './queue-depth.js';
import { SettleQueue } from './settle-queue.js';
import { StartMarks } from './start-marks.js';
import type { SqliteStatements } from './statements.js';
import { SqliteTableSizes } from './table-sizes.js';
import { walSync, type WalSync } from './wal-sync.js';

export class EngineCore {
  readonly db: Database.Database;
  readonly path: string;
  readonly clock: () => number;
  /** Held when this process owns the file (backup.ts copies differently then). */
  readonly lock: PidfileLock | null;
  readonly writes: GroupCommit<WriteEffects>;
  /** Outcome writes (complete, fail, release), retried while the failure is transient (settle-queue.ts). */
  readonly settles = new SettleQueue<WriteEffects>((op, mode) => this.writes.submit(op, mode), { isTransient: isTransientStoreError });
  readonly starts: StartMarks;
  /** What the engine remembers of its leases: an op that ends one forgets it (lease-memo.ts). */
  readonly memo = new LeaseMemo();
  readonly depths = new QueueDepths();
  readonly prepared: PreparedStatements;
  readonly #walSync: WalSync | null;
  readonly #listeners = new Set<WorkListener>();
  readonly #ping: Database.Statement<[], unknown>;
  readonly #space: DiskSpace;
  readonly #tableSizes: SqliteTableSizes;
  #closed = false;
  #closing: Promise<void> | null = null;

  /** `timed`: each group commit's duration, BEGIN until durable (the engine's `onCommitTimed`). */
  constructor(db: Database.Database, path: string, clock: () => number, lock: PidfileLock | null, timed: (seconds: number) => void) {
    this.db = db;
    this.path = path;
    this.#tableSizes = new SqliteTableSizes({ path, clock });
    this.clock = clock;
    this.lock = lock;
    this.#ping = db.prepare('SELECT 1');
    this.#space = new DiskSpace(db, { clock, probe: () => this.#probeSpace(), closing: () => this.#closing !== null });
    this.#walSync = walSync(db, path, isInMemory(path));
    this.writes = new GroupCommit<WriteEffects>(
      db,
      {
        create: createEffects,
        merge: mergeEffects,
        // Depths at once: the next batch's queue limits must count this one's jobs.
        committed: (effects) => this.depths.apply(effects),
        // Wake-ups only once on disk: whatever they lead to is then built on durable work.
        durable: (effects) => this.#notify(effects),
        error: (error) => toStoreError(error, path),
        settled: (errors, committed) => this.#space.note(errors, committed),
        timed,
      },
      this.#walSync,
    );
    this.starts = new StartMarks(db, (mark) => this.write(mark));
    this.prepared = new PreparedStatements(db, path, (statements) => this.depths.load(statements.fixed.unfinishedByQueue.all()));
    try {
      this.prepared.prepare();
    } catch {
      // Not migrated yet: migrate() prepares. Every other method assumes it ran.
    }
  }

  /** True from the start of `close` on. */
  get closing(): boolean {
    return this.#closed || this.#closing !== null;
  }

  get stats(): GroupCommitStats {
    return this.writes.stats;
  }

  get space(): { full: boolean; fullSince: number | null; fullErrors: number; retrying: number } {
    const full = this.#space.full;
    return { full: full !== null, fullSince: full?.since ?? null, fullErrors: this.#space.fullErrors, retrying: this.settles.retrying };
  }

  checkpoint(): { busy: boolean; walFrames: number; checkpointedFrames: number } {
    this.assertOpen();
    return checkpointWal(this.db);
  }

  async tableSizes(): Promise<Array<{ table: string; bytes: number }>> {
    this.assertOpen();
    return this.#tableSizes.read();
  }

  settings(): ConnectionSettings {
    this.assertOpen();
    return readSettings(this.db);
  }

  async migrate(options: MigrateOptions = {}): Promise<MigrationStatus> {
    this.assertOpen();
    const status = migrateSqlite(this.db, { clock: this.clock, ...(options.apply === undefined ? {} : { apply: options.apply }) });
    this.prepared.prepare();
    return status;
  }

  /** Out of disk space: a small real write, so readiness comes back as soon as space does. */
  async ping(): Promise<void> {
    this.assertOpen();
    this.#ping.get();
    // A failed WAL sync fails every write from then on (group-commit.ts): not ready.
    await this.visible();
    if (this.#space.full) {
      await this.#space.probe().catch(() => undefined);
      const full = this.#space.full;
      if (full) throw toStoreError(full.error, this.path);
    }
  }

  async close(): Promise<void> {
    this.#closing ??= (async () => {
      this.starts.close();
      this.#space.stop();
      await this.#tableSizes.close();
      await this.settles.close();
      await this.writes.close();
      this.#walSync?.close();
      this.#closed = true;
      this.#listeners.clear();
      try {
        this.db.close();
      } finally {
        this.lock?.release();
      }
    })();
    return this.#closing;
  }

  onWork(listener: WorkListener): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  /** One group-commit write op (group-commit.ts). */
  write<T>(op: (own: WriteEffects, batch: Readonly<WriteEffects>) => T): Promise<T> {
    return this.writes.submit(op);
  }

  /**
   * Reads wait for the syncs of the writes committed before them
   * (group-commit.ts): a write is seen once it is on disk, as with a FULL commit.
   */
  visible(): Promise<void> | null {
    return this.writes.whenDurable();
  }

  assertOpen(): void {
    if (this.#closed || this.#closing) throw new DroverError('store_unavailable', `the store ${this.path} is closed`);
  }

  #notify(effects: WriteEffects): void {
    if (effects.woken.empty || this.#listeners.size === 0) return;
    const queues = [...effects.woken.queues];
    const { handlers } = effects.woken;
    for (const listener of this.#listeners) {
      try {
        listener(queues, handlers);
      } catch {
        // A listener's bug must not break the commit path (the batch is already
        // durable and its callers answered); the work is still found by the
        // runtime's next lease or its fallback poll.
      }
    }
  }

  #probeSpace(): Promise<void> {
    return this.write(() => {
      this.prepared.s.fixed.setMeta.run('space_probe', String(this.clock()));
    });
  }
}

export type { RolePart } from '../roles/capabilities.js';

/** The statements for a read, once the engine is known to be open. */
export function readStatements(core: EngineCore): SqliteStatements {
  core.assertOpen();
  return core.prepared.s;
}

/** What a durable transition runs with (durable.ts). */
export function durableContext(core: EngineCore, own: WriteEffects): DurableContext {
  const now = core.clock();
  return { s: core.prepared.s.fixed, d: core.prepared.d.fixed, now, own };
}

/** Reclaimed leases are over: a lease-marked one must not answer its `start` from memory (lease-memo.ts). */
export function forgetLeases(memo: LeaseMemo, jobs: ReclaimedJob[]): ReclaimedJob[] {
  for (const job of jobs) memo.forget(job.id);
  return jobs;
}
