/**
 * The embedded storage engine: one SQLite file (better-sqlite3, WAL,
 * `synchronous=FULL`) owned by one process.
 *
 * - Writes go through a group commit: every write submitted in one event-loop
 *   tick shares one transaction and one fsync, each in its own savepoint.
 * - Reads run directly on the connection; they never see a half-applied batch
 *   because a batch runs synchronously from start to COMMIT.
 * - A pidfile lock keeps a second process off the file, which is what makes the
 *   in-memory queue depth counters exact.
 */
import type Database from 'better-sqlite3';
import { DroverError, toError } from '../../core/errors.js';
import {
  type ApiKeyRow,
  type AttemptRow,
  type AuditEntry,
  type AuditRecord,
  type EventRow,
  type JobRow,
  type LeasedJob,
  type NewJob,
} from '../../core/types.js';
import type {
  AuditPage,
  AuditRange,
  AuditSeal,
  BackupSnapshot,
  DeadNodeRequest,
  DeadNodeResult,
  EnqueueOptions,
  EnqueueResult,
  FailRequest,
  FenceResult,
  StartResult,
  EventMerge,
  IngestItem,
  IngestResult,
  JobFilter,
  LeaseRequest,
  MatchResult,
  MigrateOptions,
  MigrationStatus,
  NodeHeartbeat,
  NodeRegistration,
  NodeRow,
  PruneRequest,
  QueueStats,
  ReclaimedJob,
  ReclaimOptions,
  RestampRequest,
  RestampResult,
  StageResult,
  StorageEngine,
  StoreCapabilities,
  WithoutRow,
  WorkListener,
} from '../engine.js';
import { insertKey, readKeyByHash } from './api-keys.js';
import { snapshotSqlite } from './backup.js';
import { checkpointWal, ensureParentDir, isInMemory, openConnection, readSettings, type ConnectionSettings } from './connection.js';
import { DiskSpace } from './disk-space.js';
import * as durable from './durable.js';
import type { DurableStatements } from './durable-statements.js';
import { readPendingInterrupts, readPendingWait, readSteps, readWait } from './durable-reads.js';
import { isTransientStoreError, toStoreError } from './errors.js';
import { completeJob, failJob, heartbeatJob, releaseJob, startJob, withoutRow } from './fenced.js';
import { GroupCommit, type GroupCommitStats } from './group-commit.js';
import { ingestItem, insertJobs, type IntakeContext } from './intake.js';
import { buildPayloadIndexes, readAttempts, readEvent, readJob, readJobPage, readQueueStats } from './job-reads.js';
import { leaseJobs } from './lease.js';
import { LeaseMemo, type HeldLease } from './lease-memo.js';
import { pruneStore, restampJobs, stageDueJobs } from './maintenance.js';
import { migrateSqlite } from './migrator.js';
import { NodeRegistry } from './node-registry.js';
import { cancelJob, retryJob } from './operator-actions.js';
import { acquirePidfileLock, type PidfileLock } from './pidfile-lock.js';
import { PreparedStatements } from './prepared.js';
import { createEffects, mergeEffects, QueueDepths, type WriteEffects } from './queue-depth.js';
import { toApiKeyRow } from './rows.js';
import { reclaimAllRunning, reclaimExpired, reclaimStaleNodes, reclaimWorkerLeases } from './reclaim.js';
import { SettleQueue } from './settle-queue.js';
import { StartMarks } from './start-marks.js';
import { walSync, type WalSync } from './wal-sync.js';
import type { SqliteStatements } from './statements.js';
import { SqliteTableSizes } from './table-sizes.js';
import { eventMerges, type TriggerStatements } from './trigger-groups.js';
import type { StepRow, SuspendRequest, WaitRow } from '../../core/durable.js';
import type { RecordStepRequest, RecordStepResult, ResumeResult, SuspendResult, WaitFilter } from '../roles/durable-store.js';

export interface SqliteEngineOptions {
  /** Database file; its parent directory is created. `:memory:` works for throwaway stores (no lock). */
  path: string;
  clock?: () => number;
  /** FULL (default) fsyncs every commit; NORMAL may lose the last commits on power loss. */
  synchronous?: 'FULL' | 'NORMAL';
  /** Take the single-owner pidfile lock (default true). Read-only tools such as backup pass false. */
  lock?: boolean;
  /** How long a write waits for another connection's lock (backup tools), default 5000 ms. */
  busyTimeoutMs?: number;
  /** The page cache's limit in KiB (`drover start --low-memory`); default better-sqlite3's, 16,000. */
  cacheKib?: number;
}

/**
 * The SQLite `StorageEngine`. Construct it with `openSqliteEngine`, which takes
 * the lock and sets up the connection.
 *
 * @example
 * const engine = await openSqliteEngine({ path: './data/drover.db' });
 * await engine.migrate();
 * engine.stats; // { batches, ops, lastBatchSize, failedCommits }
 */
export class SqliteEngine implements StorageEngine {
  readonly capabilities: StoreCapabilities = { engine: 'sqlite', multiNode: false, crossProcessNotify: false, groupCommit: true, sharedRateLimits: false, leaseAtIntake: false };
  readonly path: string;
  readonly #db: Database.Database;
  readonly #clock: () => number;
  readonly #lock: PidfileLock | null;
  readonly #writes: GroupCommit<WriteEffects>;
  readonly #settles = new SettleQueue<WriteEffects>((op, mode) => this.#writes.submit(op, mode), { isTransient: isTransientStoreError });
  readonly #starts: StartMarks;
  readonly #memo = new LeaseMemo();
  readonly #walSync: WalSync | null;
  readonly #depths = new QueueDepths();
  readonly #nodes = new NodeRegistry();
  readonly #listeners = new Set<WorkListener>();
  readonly #ping: Database.Statement<[], unknown>;
  readonly #space: DiskSpace;
  readonly #tableSizes: SqliteTableSizes;
  readonly #prepared: PreparedStatements;
  #closed = false;
  #closing: Promise<void> | null = null;

  constructor(db: Database.Database, path: string, clock: () => number, lock: PidfileLock | null) {
    this.#db = db;
    this.path = path;
    this.#tableSizes = new SqliteTableSizes({ path, clock });
    this.#clock = clock;
    this.#lock = lock;
    this.#ping = db.prepare('SELECT 1');
    this.#space = new DiskSpace(db, { clock, probe: () => this.#probeSpace(), closing: () => this.#closing !== null });
    this.#walSync = walSync(db, path, isInMemory(path));
    this.#writes = new GroupCommit<WriteEffects>(
      db,
      {
        create: createEffects,
        merge: mergeEffects,
        // Depths at once: the next batch's queue limits must count this one's jobs.
        committed: (effects) => this.#depths.apply(effects),
        // Wake-ups only once on disk: whatever they lead to is then built on durable work.
        durable: (effects) => this.#notify(effects),
        error: (error) => toStoreError(error, path),
        settled: (errors, committed) => this.#space.note(errors, committed),
        timed: (seconds) => this.onCommitTimed?.(seconds),
      },
      this.#walSync,
    );
    this.#starts = new StartMarks(db, (mark) => this.#write(mark));
    this.#prepared = new PreparedStatements(db, path, (statements) => this.#depths.load(statements.fixed.unfinishedByQueue.all()));
    try {
      this.#prepared.prepare();
    } catch {
      // Not migrated yet: migrate() prepares. Every other method assumes it ran.
    }
  }

  /**
   * Set by the metrics (obs/store-metrics.ts): called with each group commit's
   * duration, BEGIN until durable (`synchronous=FULL`: the WAL sync, wal-sync.ts). A plain
   * field so the engine holds no metrics code and the seam's wrapper leaves it alone.
   */
  onCommitTimed: ((seconds: number) => void) | null = null;

  /** Group-commit counters (batches, ops, last batch size), cheap to read for metrics. */
  get stats(): GroupCommitStats {
    return this.#writes.stats;
  }

  /**
   * Disk space as the writes saw it, for metrics: `full` while writes fail
   * with SQLITE_FULL (until one commits again), `fullErrors` counts writes
   * refused for lack of space, `retrying` outcome writes waiting to try again.
   */
  get space(): { full: boolean; fullSince: number | null; fullErrors: number; retrying: number } {
    const full = this.#space.full;
    return { full: full !== null, fullSince: full?.since ?? null, fullErrors: this.#space.fullErrors, retrying: this.#settles.retrying };
  }

  /** A passive WAL checkpoint for the metrics' periodic checkpoint (connection.ts `checkpointWal` says why). */
  checkpoint(): { busy: boolean; walFrames: number; checkpointedFrames: number } {
    this.#assertOpen();
    return checkpointWal(this.#db);
  }

  /**
   * Bytes per table, indexes included, like PostgreSQL's: read by `dbstat` in
   * a worker thread on its own read-only connection, at most every 5 minutes
   * (see table-sizes.ts), for `drover_store_table_size_bytes`.
   */
  async tableSizes(): Promise<Array<{ table: string; bytes: number }>> {
    this.#assertOpen();
    return this.#tableSizes.read();
  }

  /** The connection's durability settings, for `drover doctor` and tests. */
  settings(): ConnectionSettings {
    this.#assertOpen();
    return readSettings(this.#db);
  }

  async migrate(options: MigrateOptions = {}): Promise<MigrationStatus> {
    this.#assertOpen();
    const status = migrateSqlite(this.#db, { clock: this.#clock, ...(options.apply === undefined ? {} : { apply: options.apply }) });
    this.#prepared.prepare();
    return status;
  }

  /** Out of disk space: a small real write, so readiness comes back as soon as space does. */
  async ping(): Promise<void> {
    this.#assertOpen();
    this.#ping.get();
    // A failed WAL sync fails every write from then on (group-commit.ts): not ready.
    await this.#visible();
    if (this.#space.full) {
      await this.#space.probe().catch(() => undefined);
      const full = this.#space.full;
      if (full) throw toStoreError(full.error, this.path);
    }
  }

  async close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#starts.close();
      this.#space.stop();
      await this.#tableSizes.close();
      await this.#settles.close();
      await this.#writes.close();
      this.#walSync?.close();
      this.#closed = true;
      this.#listeners.clear();
      try {
        this.#db.close();
      } finally {
        this.#lock?.release();
      }
    })();
    return this.#closing;
  }

  onWork(listener: WorkListener): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  // --- intake -------------------------------------------------------------

  ingest(items: readonly IngestItem[], options?: EnqueueOptions): Promise<IngestResult[]> {
    return this.#write((own, batch) => {
      const ctx = this.#intake(options, own, batch);
      return items.map((item) => ingestItem(ctx, item));
    });
  }

  enqueue(jobs: readonly NewJob[], options?: EnqueueOptions): Promise<EnqueueResult[]> {
    return this.#write((own, batch) => {
      const ctx = this.#intake(options, own, batch);
      return insertJobs(ctx, jobs);
    });
  }

  // --- execution ----------------------------------------------------------

  /**
   * The node's own leases are answered once committed, before their WAL sync
   * (group-commit.ts `SubmitMode.atCommit`), when no write that could have
   * made their jobs leasable (an enqueue, a retry) is still unsynced: so a job
   * never starts before its enqueue is durable. Their holder is this process,
   * which a power cut ends as it ends the sync, so no holder can outlive a
   * lease the cut undoes, and every durable write after it (a completion, a
   * step) is synced after it. What the cut can cost is what a start mark's
   * own lost write costs (start-marks.ts): a crash left uncounted. A lease not
   * marked `inProcess` (a remote worker's) waits for its sync: that holder
   * would outlive the cut and could run the job beside its next holder.
   */
  lease(request: LeaseRequest): Promise<LeasedJob[]> {
    const held: HeldLease[] = [];
    return this.#writes.submit(
      () => {
        const s = this.#s;
        return leaseJobs(s, request, this.#clock(), (id) => readEvent(s.fixed, id), held);
      },
      request.inProcess === true ? OWN_LEASE : REMOTE_LEASE,
    ).then((jobs) => {
      // Only once committed (lease-memo.ts).
      this.#memo.remember(held);
      return jobs;
    });
  }

  heartbeat(jobId: string, token: string, leaseMs: number): Promise<FenceResult> {
    return this.#write(() => heartbeatJob(this.#s.fixed, jobId, token, leaseMs, this.#clock()));
  }

  /**
   * Marked by the lease itself (`LeaseRequest.start`): answered at once. Else
   * written at once, without waiting for the next group commit (start-marks.ts says why).
   */
  start(jobId: string, token: string): Promise<StartResult> {
    if (this.#closed || this.#closing) return Promise.reject(new DroverError('store_unavailable', `the store ${this.path} is closed`));
    if (this.#memo.takeMark(jobId, token)) return Promise.resolve(MARKED);
    return this.#starts.add(() => startJob(this.#s.fixed, jobId, token));
  }

  complete(jobId: string, token: string, result: unknown): Promise<FenceResult>;
  complete(jobId: string, token: string, result: unknown, options: WithoutRow): Promise<MatchResult>;
  complete(jobId: string, token: string, result: unknown, options?: WithoutRow): Promise<FenceResult | MatchResult> {
    const memo = this.#memo;
    // A completion makes nothing leasable (group-commit.ts `SubmitMode.feeds`).
    if (options?.row === false) return this.#settles.add((own) => withoutRow(completeJob(this.#s.fixed, memo, jobId, token, result, this.#clock(), own)), false);
    return this.#settles.add((own) => completeJob(this.#s.fixed, memo, jobId, token, result, this.#clock(), own), false);
  }

  fail(jobId: string, token: string, request: FailRequest): Promise<FenceResult> {
    return this.#settles.add((own) => failJob(this.#s.fixed, this.#memo, jobId, token, request, this.#clock(), own));
  }

  release(jobId: string, token: string, runAt?: number): Promise<FenceResult> {
    return this.#settles.add((own) => releaseJob(this.#s.fixed, this.#memo, jobId, token, this.#clock(), own, runAt));
  }

  // --- background ---------------------------------------------------------

  /** Moves at most 5000 jobs per call; when more are due, `nextDueAt` is <= now, so call again. */
  stageDue(): Promise<StageResult> {
    return this.#write((own) => stageDueJobs(this.#durable(this.#clock(), own)));
  }

  /** Reclaims at most 1000 expired leases per call (oldest deadline first). */
  async reapExpired(options: ReclaimOptions): Promise<ReclaimedJob[]> {
    // The reaper asks every second and almost always finds nothing: an index
    // probe first, so an idle reap costs no write batch (no group-commit slot).
    this.#assertOpen();
    if (!this.#s.fixed.anyExpiredLease.get(this.#clock())) return [];
    return this.#write((own) => this.#forget(reclaimExpired(this.#s.fixed, options, this.#clock(), own)));
  }

  reclaimWorker(workerId: string, options: ReclaimOptions): Promise<ReclaimedJob[]> {
    return this.#write((own) => this.#forget(reclaimWorkerLeases(this.#s.fixed, workerId, options, this.#clock, own)));
  }

  // --- nodes (one process owns the file: see node-registry.ts) --------------

  async registerNode(node: NodeRegistration): Promise<void> {
    this.#assertOpen();
    this.#nodes.register(node, this.#clock());
  }

  async heartbeatNode(node: NodeRegistration): Promise<NodeHeartbeat> {
    this.#assertOpen();
    return this.#nodes.heartbeat(node, this.#clock());
  }

  async reclaimDeadNodes(request: DeadNodeRequest): Promise<DeadNodeResult> {
    const stale = this.#nodes.stale(this.#clock() - request.staleAfterMs, request.exceptNodeId);
    const nodes = stale.map((node) => node.nodeId);
    if (nodes.length === 0) return { nodes, jobs: [] };
    const jobs = await this.#write((own) => this.#forget(reclaimStaleNodes(this.#s.fixed, stale, request, this.#clock(), own)));
    this.#nodes.remove(nodes);
    return { nodes, jobs };
  }

  async deregisterNode(node: NodeRegistration): Promise<void> {
    this.#nodes.deregister(node);
  }

  async listNodes(): Promise<NodeRow[]> {
    return this.#nodes.list();
  }

  restampJobs(request: RestampRequest): Promise<RestampResult> {
    return this.#write(() => restampJobs(this.#s.fixed, request));
  }

  prune(request: PruneRequest): Promise<{ jobs: number; events: number }> {
    return this.#write(() => pruneStore(this.#s.fixed, this.#t, request, this.#clock));
  }

  // --- operator actions ---------------------------------------------------

  cancel(jobId: string): Promise<JobRow | null> {
    return this.#write((own) => {
      this.#memo.forget(jobId);
      return cancelJob(this.#s.fixed, this.#d.fixed, jobId, this.#clock, own);
    });
  }

  retry(jobId: string): Promise<JobRow | null> {
    return this.#write((own) => retryJob(this.#s.fixed, jobId, this.#clock, own));
  }

  // --- durable execution (durable.ts) ---------------------------------------

  async getSteps(jobId: string): Promise<StepRow[]> {
    await this.#visible();
    return readSteps(() => this.#readDurable().fixed, jobId);
  }

  recordStep(jobId: string, token: string, step: RecordStepRequest): Promise<RecordStepResult> {
    return this.#write((own) => durable.recordStep(this.#durable(this.#clock(), own), jobId, token, step));
  }

  suspend(jobId: string, token: string, request: SuspendRequest): Promise<SuspendResult> {
    return this.#write((own) => {
      this.#memo.forget(jobId);
      return durable.suspend(this.#durable(this.#clock(), own), jobId, token, request);
    });
  }

  resumeWait(waitId: string, input: unknown, resolvedBy: string): Promise<ResumeResult> {
    return this.#write((own) => durable.resumeWait(this.#durable(this.#clock(), own), waitId, input, resolvedBy));
  }

  async getWait(waitId: string): Promise<WaitRow | null> {
    await this.#visible();
    return readWait(this.#readDurable().fixed, waitId);
  }

  async pendingWait(jobId: string): Promise<WaitRow | null> {
    await this.#visible();
    return readPendingWait(() => this.#readDurable().fixed, jobId);
  }

  async listWaits(filter: WaitFilter): Promise<WaitRow[]> {
    await this.#visible();
    return this.#readDurable().listWaits(filter).map(durable.toWaitRow);
  }

  async pendingInterrupts(): Promise<{ count: number; oldestCreatedAt: number | null }> {
    await this.#visible();
    return readPendingInterrupts(this.#readDurable().fixed);
  }

  // --- reads --------------------------------------------------------------

  async getJob(id: string): Promise<JobRow | null> {
    await this.#visible();
    return readJob(() => this.#read().fixed, id);
  }

  async getAttempts(jobId: string): Promise<AttemptRow[]> {
    await this.#visible();
    return readAttempts(() => this.#read().fixed, jobId);
  }

  async listJobs(filter: JobFilter): Promise<JobRow[]> {
    await this.#visible();
    return readJobPage(() => this.#read(), filter);
  }

  async getEvent(id: string): Promise<EventRow | null> {
    await this.#visible();
    return readEvent(this.#read().fixed, id);
  }

  async eventMerges(eventId: string): Promise<EventMerge[]> {
    await this.#visible();
    this.#read();
    return eventMerges(this.#t, eventId);
  }

  async ensurePayloadIndexes(paths: ReadonlyArray<readonly string[]>): Promise<string[]> {
    return buildPayloadIndexes(this.#db, paths);
  }

  async queueStats(): Promise<QueueStats[]> {
    await this.#visible();
    return readQueueStats(this.#read().fixed);
  }

  // --- API keys -----------------------------------------------------------

  createKey(key: ApiKeyRow): Promise<void> {
    return this.#write(() => insertKey(this.#s.fixed, key));
  }

  async findKeyByHash(hash: string): Promise<ApiKeyRow | null> {
    await this.#visible();
    return readKeyByHash(this.#read().fixed, hash);
  }

  async listKeys(): Promise<ApiKeyRow[]> {
    await this.#visible();
    return this.#read().fixed.listKeys.all().map(toApiKeyRow);
  }

  /** True when the key existed and was not already revoked. */
  revokeKey(id: string): Promise<boolean> {
    return this.#write(() => this.#s.fixed.revokeKey.run(this.#clock(), id).changes > 0);
  }

  // --- node metadata ------------------------------------------------------

  async getMeta(key: string): Promise<string | null> {
    await this.#visible();
    return this.#read().fixed.getMeta.get(key)?.value ?? null;
  }

  setMeta(key: string, value: string): Promise<void> {
    return this.#write(() => {
      this.#s.fixed.setMeta.run(key, value);
    });
  }

  updateMeta(key: string, update: (current: string | null) => string | null): Promise<string | null> {
    // Read and write in one operation of the write transaction: nothing runs in between.
    return this.#write(() => {
      const current = this.#s.fixed.getMeta.get(key)?.value ?? null;
      const next = update(current);
      if (next === null || next === current) return current;
      this.#s.fixed.setMeta.run(key, next);
      return next;
    });
  }

  // --- backup and restore -------------------------------------------------

  /** Online backup API when this process owns the store, else `VACUUM INTO` (see `backup.ts`). */
  /** Only durable writes in the copy: it waits for the syncs of what was committed before and while it ran. */
  async backupTo(file: string): Promise<BackupSnapshot> {
    this.#assertOpen();
    await this.#visible();
    const snapshot = await snapshotSqlite(this.#db, file, { owner: this.#lock !== null });
    await this.#visible();
    return snapshot;
  }

  reclaimAll(): Promise<ReclaimedJob[]> {
    return this.#write((own) => this.#forget(reclaimAllRunning(this.#s.fixed, this.#clock(), own)));
  }

  // --- audit trail --------------------------------------------------------

  appendAudit(entry: AuditEntry, seal: AuditSeal): Promise<AuditRecord> {
    return this.#write(() => this.#prepared.audit.append(entry, seal));
  }

  async listAudit(page: AuditPage): Promise<AuditRecord[]> {
    await this.#visible();
    this.#assertOpen();
    return this.#prepared.audit.page(page);
  }

  async readAudit(range: AuditRange): Promise<AuditRecord[]> {
    await this.#visible();
    this.#assertOpen();
    return this.#prepared.audit.range(range);
  }

  // --- internals ----------------------------------------------------------

  #write<T>(op: (own: WriteEffects, batch: Readonly<WriteEffects>) => T): Promise<T> {
    return this.#writes.submit(op);
  }

  /** Reclaimed leases are over: a lease-marked one must not answer its `start` from memory (lease-memo.ts). */
  #forget(jobs: ReclaimedJob[]): ReclaimedJob[] {
    for (const job of jobs) this.#memo.forget(job.id);
    return jobs;
  }

  /**
   * Reads wait for the syncs of the writes committed before them
   * (group-commit.ts): a write is seen once it is on disk, as with a FULL commit.
   */
  #visible(): Promise<void> | null {
    return this.#writes.whenDurable();
  }

  #read(): SqliteStatements {
    this.#assertOpen();
    return this.#s;
  }

  #assertOpen(): void {
    if (this.#closed || this.#closing) throw new DroverError('store_unavailable', `the store ${this.path} is closed`);
  }

  get #s(): SqliteStatements {
    return this.#prepared.s;
  }

  get #d(): DurableStatements {
    return this.#prepared.d;
  }

  get #t(): TriggerStatements {
    return this.#prepared.t;
  }

  #readDurable(): DurableStatements {
    this.#assertOpen();
    return this.#d;
  }

  #durable(now: number, own: WriteEffects): durable.DurableContext {
    return { s: this.#s.fixed, d: this.#d.fixed, now, own };
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
    return this.#write(() => {
      this.#s.fixed.setMeta.run('space_probe', String(this.#clock()));
    });
  }

  #intake(options: EnqueueOptions | undefined, own: WriteEffects, batch: Readonly<WriteEffects>): IntakeContext {
    const s = this.#s;
    return { s: s.fixed, inserts: s.jobInserts, d: this.#d.fixed, t: this.#t, depths: this.#depths, now: this.#clock(), options, own, batch };
  }
}

/**
 * Open (but do not migrate) the SQLite store at `options.path`, taking the
 * single-owner lock unless `lock: false`.
 *
 * @example
 * const engine = await openSqliteEngine({ path: './data/drover.db' });
 * await engine.migrate();
 * const [{ job }] = await engine.enqueue([{ handler: 'email', queue: 'default', payload: {}, priority: 0, runAt: Date.now(), maxAttempts: 3 }]);
 * await engine.close();
 */
const MARKED: StartResult = Object.freeze({ ok: true });
const OWN_LEASE = Object.freeze({ feeds: false, atCommit: true });
const REMOTE_LEASE = Object.freeze({ feeds: false, atCommit: false });

export async function openSqliteEngine(options: SqliteEngineOptions): Promise<SqliteEngine> {
  const { path } = options;
  let lock: PidfileLock | null = null;
  try {
    ensureParentDir(path);
    if (options.lock !== false && !isInMemory(path)) lock = acquirePidfileLock(path);
    const db = openConnection(path, options);
    return new SqliteEngine(db, path, options.clock ?? Date.now, lock);
  } catch (error) {
    lock?.release();
    if (error instanceof DroverError) throw error;
    throw new DroverError('store_unavailable', `cannot open the SQLite store ${path}: ${toError(error).message}`, {
      cause: error,
    });
  }
}
