/**
 * The embedded storage engine: one SQLite file (better-sqlite3, WAL,
 * `synchronous=FULL`) owned by one process. A pidfile lock keeps a second
 * process off the file, which is what makes the in-memory queue depth
 * counters and node registry exact.
 *
 * The engine is the `StorageEngine` interface wired to its parts: the core
 * (engine-core.ts: the connection, the group-commit write path, close),
 * intake (intake.ts), the hot path of a worker's lease (lease.ts,
 * start-marks.ts, fenced.ts through the settle queue), kept here on the
 * engine's own fields, and one part per remaining role: job reads
 * (job-reads.ts), durable execution (durable-store.ts), upkeep and operator
 * actions (upkeep.ts), nodes (node-registry.ts), keys, metadata and audit
 * (records.ts).
 */
import type Database from 'better-sqlite3';
import { DroverError, toError } from '../../core/errors.js';
import type { ApiKeyRow, AttemptRow, AuditEntry, AuditRecord, EventRow, JobRow, LeasedJob, NewJob } from '../../core/types.js';
import type {
  AuditPage,
  AuditRange,
  AuditSeal,
  BackupSnapshot,
  DeadNodeRequest,
  DeadNodeResult,
  EnqueueOptions,
  EnqueueResult,
  EventMerge,
  FailRequest,
  FenceResult,
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
  StartResult,
  StorageEngine,
  StoreCapabilities,
  WithoutRow,
  WorkListener,
} from '../engine.js';
import { snapshotSqlite } from './backup.js';
import { ensureParentDir, isInMemory, openConnection, type ConnectionSettings } from './connection.js';
import { SqliteDurableStore } from './durable-store.js';
import { EngineCore } from './engine-core.js';
import { completeJob, failJob, heartbeatJob, releaseJob, startJob, withoutRow } from './fenced.js';
import type { GroupCommit, GroupCommitStats } from './group-commit.js';
import { ingestItem, insertJobs, type IntakeContext } from './intake.js';
import { readEvent, SqliteJobReads } from './job-reads.js';
import { leaseJobs } from './lease.js';
import type { HeldLease, LeaseMemo } from './lease-memo.js';
import { SqliteNodeRegistry } from './node-registry.js';
import { acquirePidfileLock, type PidfileLock } from './pidfile-lock.js';
import type { PreparedStatements } from './prepared.js';
import type { WriteEffects } from './queue-depth.js';
import { SqliteRecords } from './records.js';
import type { SettleQueue } from './settle-queue.js';
import type { StartMarks } from './start-marks.js';
import type { SqliteStatements } from './statements.js';
import { SqliteUpkeep } from './upkeep.js';
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
  readonly #core: EngineCore;
  // The hot path's parts, held here so a per-job call reaches them in one step.
  readonly #clock: () => number;
  readonly #writes: GroupCommit<WriteEffects>;
  readonly #settles: SettleQueue<WriteEffects>;
  readonly #starts: StartMarks;
  readonly #memo: LeaseMemo;
  readonly #prepared: PreparedStatements;
  readonly #reads: SqliteJobReads;
  readonly #durable: SqliteDurableStore;
  readonly #upkeep: SqliteUpkeep;
  readonly #nodes: SqliteNodeRegistry;
  readonly #records: SqliteRecords;

  constructor(db: Database.Database, path: string, clock: () => number, lock: PidfileLock | null) {
    this.path = path;
    const core = new EngineCore(db, path, clock, lock, (seconds) => this.onCommitTimed?.(seconds));
    this.#core = core;
    ({ clock: this.#clock, writes: this.#writes, settles: this.#settles, starts: this.#starts, memo: this.#memo, prepared: this.#prepared } = core);
    this.#reads = new SqliteJobReads(core);
    this.#durable = new SqliteDurableStore(core);
    this.#upkeep = new SqliteUpkeep(core);
    this.#nodes = new SqliteNodeRegistry(core);
    this.#records = new SqliteRecords(core);
  }

  /**
   * Set by the metrics (obs/store-metrics.ts): called with each group commit's
   * duration, BEGIN until durable (`synchronous=FULL`: the WAL sync, wal-sync.ts). A plain
   * field so the engine holds no metrics code and the seam's wrapper leaves it alone.
   */
  onCommitTimed: ((seconds: number) => void) | null = null;

  /** Group-commit counters (batches, ops, last batch size), cheap to read for metrics. */
  get stats(): GroupCommitStats {
    return this.#core.stats;
  }

  /**
   * Disk space as the writes saw it, for metrics: `full` while writes fail
   * with SQLITE_FULL (until one commits again), `fullErrors` counts writes
   * refused for lack of space, `retrying` outcome writes waiting to try again.
   */
  get space(): { full: boolean; fullSince: number | null; fullErrors: number; retrying: number } {
    return this.#core.space;
  }

  /** A passive WAL checkpoint for the metrics' periodic checkpoint (connection.ts `checkpointWal` says why). */
  checkpoint(): { busy: boolean; walFrames: number; checkpointedFrames: number } {
    return this.#core.checkpoint();
  }

  /**
   * Bytes per table, indexes included, like PostgreSQL's: read by `dbstat` in
   * a worker thread on its own read-only connection, at most every 5 minutes
   * (see table-sizes.ts), for `drover_store_table_size_bytes`.
   */
  tableSizes(): Promise<Array<{ table: string; bytes: number }>> {
    return this.#core.tableSizes();
  }

  /** The connection's durability settings, for `drover doctor` and tests. */
  settings(): ConnectionSettings {
    return this.#core.settings();
  }

  migrate(options?: MigrateOptions): Promise<MigrationStatus> {
    return this.#core.migrate(options);
  }

  /** Out of disk space: a small real write, so readiness comes back as soon as space does. */
  ping(): Promise<void> {
    return this.#core.ping();
  }

  close(): Promise<void> {
    return this.#core.close();
  }

  onWork(listener: WorkListener): () => void {
    return this.#core.onWork(listener);
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
    if (this.#core.closing) return Promise.reject(new DroverError('store_unavailable', `the store ${this.path} is closed`));
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

  // --- background and operator actions (upkeep.ts) ------------------------

  stageDue(): Promise<StageResult> {
    return this.#upkeep.stageDue();
  }

  reapExpired(options: ReclaimOptions): Promise<ReclaimedJob[]> {
    return this.#upkeep.reapExpired(options);
  }

  reclaimWorker(workerId: string, options: ReclaimOptions): Promise<ReclaimedJob[]> {
    return this.#upkeep.reclaimWorker(workerId, options);
  }

  reclaimAll(): Promise<ReclaimedJob[]> {
    return this.#upkeep.reclaimAll();
  }

  restampJobs(request: RestampRequest): Promise<RestampResult> {
    return this.#upkeep.restampJobs(request);
  }

  prune(request: PruneRequest): Promise<{ jobs: number; events: number }> {
    return this.#upkeep.prune(request);
  }

  cancel(jobId: string): Promise<JobRow | null> {
    return this.#upkeep.cancel(jobId);
  }

  retry(jobId: string): Promise<JobRow | null> {
    return this.#upkeep.retry(jobId);
  }

  // --- nodes (node-registry.ts) ---------------------------------------------

  registerNode(node: NodeRegistration): Promise<void> {
    return this.#nodes.registerNode(node);
  }

  heartbeatNode(node: NodeRegistration): Promise<NodeHeartbeat> {
    return this.#nodes.heartbeatNode(node);
  }

  reclaimDeadNodes(request: DeadNodeRequest): Promise<DeadNodeResult> {
    return this.#nodes.reclaimDeadNodes(request);
  }

  deregisterNode(node: NodeRegistration): Promise<void> {
    return this.#nodes.deregisterNode(node);
  }

  listNodes(): Promise<NodeRow[]> {
    return this.#nodes.listNodes();
  }

  // --- durable execution (durable-store.ts) ---------------------------------

  getSteps(jobId: string): Promise<StepRow[]> {
    return this.#durable.getSteps(jobId);
  }

  recordStep(jobId: string, token: string, step: RecordStepRequest): Promise<RecordStepResult> {
    return this.#durable.recordStep(jobId, token, step);
  }

  suspend(jobId: string, token: string, request: SuspendRequest): Promise<SuspendResult> {
    return this.#durable.suspend(jobId, token, request);
  }

  resumeWait(waitId: string, input: unknown, resolvedBy: string): Promise<ResumeResult> {
    return this.#durable.resumeWait(waitId, input, resolvedBy);
  }

  getWait(waitId: string): Promise<WaitRow | null> {
    return this.#durable.getWait(waitId);
  }

  pendingWait(jobId: string): Promise<WaitRow | null> {
    return this.#durable.pendingWait(jobId);
  }

  listWaits(filter: WaitFilter): Promise<WaitRow[]> {
    return this.#durable.listWaits(filter);
  }

  pendingInterrupts(): Promise<{ count: number; oldestCreatedAt: number | null }> {
    return this.#durable.pendingInterrupts();
  }

  // --- reads (job-reads.ts) -------------------------------------------------

  getJob(id: string): Promise<JobRow | null> {
    return this.#reads.getJob(id);
  }

  getAttempts(jobId: string): Promise<AttemptRow[]> {
    return this.#reads.getAttempts(jobId);
  }

  listJobs(filter: JobFilter): Promise<JobRow[]> {
    return this.#reads.listJobs(filter);
  }

  getEvent(id: string): Promise<EventRow | null> {
    return this.#reads.getEvent(id);
  }

  eventMerges(eventId: string): Promise<EventMerge[]> {
    return this.#reads.eventMerges(eventId);
  }

  ensurePayloadIndexes(paths: ReadonlyArray<readonly string[]>): Promise<string[]> {
    return this.#reads.ensurePayloadIndexes(paths);
  }

  queueStats(): Promise<QueueStats[]> {
    return this.#reads.queueStats();
  }

  handlersWithQueuedJobs(handlers: readonly string[]): Promise<string[]> {
    return this.#reads.handlersWithQueuedJobs(handlers);
  }

  // --- API keys, node metadata, audit trail (records.ts) ---------------------

  createKey(key: ApiKeyRow): Promise<void> {
    return this.#records.createKey(key);
  }

  findKeyByHash(hash: string): Promise<ApiKeyRow | null> {
    return this.#records.findKeyByHash(hash);
  }

  listKeys(): Promise<ApiKeyRow[]> {
    return this.#records.listKeys();
  }

  revokeKey(id: string): Promise<boolean> {
    return this.#records.revokeKey(id);
  }

  getMeta(key: string): Promise<string | null> {
    return this.#records.getMeta(key);
  }

  setMeta(key: string, value: string): Promise<void> {
    return this.#records.setMeta(key, value);
  }

  updateMeta(key: string, update: (current: string | null) => string | null): Promise<string | null> {
    return this.#records.updateMeta(key, update);
  }

  appendAudit(entry: AuditEntry, seal: AuditSeal): Promise<AuditRecord> {
    return this.#records.appendAudit(entry, seal);
  }

  listAudit(page: AuditPage): Promise<AuditRecord[]> {
    return this.#records.listAudit(page);
  }

  readAudit(range: AuditRange): Promise<AuditRecord[]> {
    return this.#records.readAudit(range);
  }

  // --- backup -------------------------------------------------------------

  /** Online backup API when this process owns the store, else `VACUUM INTO` (see `backup.ts`). */
  /** Only durable writes in the copy: it waits for the syncs of what was committed before and while it ran. */
  async backupTo(file: string): Promise<BackupSnapshot> {
    const core = this.#core;
    core.assertOpen();
    await core.visible();
    const snapshot = await snapshotSqlite(core.db, file, { owner: core.lock !== null });
    await core.visible();
    return snapshot;
  }

  // --- internals ----------------------------------------------------------

  #write<T>(op: (own: WriteEffects, batch: Readonly<WriteEffects>) => T): Promise<T> {
    return this.#writes.submit(op);
  }

  get #s(): SqliteStatements {
    return this.#prepared.s;
  }

  #intake(options: EnqueueOptions | undefined, own: WriteEffects, batch: Readonly<WriteEffects>): IntakeContext {
    const s = this.#s;
    return { s: s.fixed, inserts: s.jobInserts, d: this.#prepared.d.fixed, t: this.#prepared.t, depths: this.#core.depths, now: this.#clock(), options, own, batch };
  }
}

const MARKED: StartResult = Object.freeze({ ok: true });
const OWN_LEASE = Object.freeze({ feeds: false, atCommit: true });
const REMOTE_LEASE = Object.freeze({ feeds: false, atCommit: false });

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
