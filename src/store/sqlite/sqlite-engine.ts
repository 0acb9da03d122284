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
import { payloadIndexName } from '../../core/payload-filter.js';
import {
  TERMINAL_STATES,
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
  WorkListener,
} from '../engine.js';
import { AuditStatements } from './audit.js';
import { snapshotSqlite } from './backup.js';
import { ensureParentDir, isInMemory, openConnection, readSettings, type ConnectionSettings } from './connection.js';
import { completeJob, failJob, heartbeatJob, releaseJob, startJob } from './fenced.js';
import { SettleQueue } from './settle-queue.js';
import { isDiskFull, isTransientStoreError, toStoreError } from './errors.js';
import { StartMarks } from './start-marks.js';
import { GroupCommit, type GroupCommitStats } from './group-commit.js';
import { ingestItem, insertJob, type IntakeContext } from './intake.js';
import { leaseJobs } from './lease.js';
import { migrateSqlite } from './migrator.js';
import { NodeRegistry } from './node-registry.js';
import { acquirePidfileLock, type PidfileLock } from './pidfile-lock.js';
import { addDepth, createEffects, mergeEffects, QueueDepths, type WriteEffects } from './queue-depth.js';
import { parseJobId, toApiKeyRow, toAttemptRow, toEventRow, toJobRow, toQueueStats } from './rows.js';
import { reclaimJobs } from './reclaim.js';
import { SqliteTableSizes } from './table-sizes.js';
import { SqliteStatements } from './statements.js';
import { DurableStatements } from './durable-statements.js';
import { eventMerges, prepareTriggerStatements, pruneTriggerGroups, type TriggerStatements } from './trigger-groups.js';
import * as durable from './durable.js';
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
}

/** Most scheduled jobs one stageDue call moves, so it never holds the write lock for long. */
const STAGE_BATCH = 5000;
/** Most expired leases one reapExpired call reclaims, for the same reason. */
const REAP_BATCH = 1000;
/** While out of disk space, try a small write this often to notice freed space. */
const FULL_PROBE_MS = 2_000;

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
  readonly capabilities: StoreCapabilities = { engine: 'sqlite', multiNode: false, crossProcessNotify: false, groupCommit: true, sharedRateLimits: false };
  readonly path: string;
  readonly #db: Database.Database;
  readonly #clock: () => number;
  readonly #lock: PidfileLock | null;
  readonly #writes: GroupCommit<WriteEffects>;
  readonly #settles = new SettleQueue<WriteEffects>((op) => this.#write(op), { isTransient: isTransientStoreError });
  readonly #starts: StartMarks;
  readonly #depths = new QueueDepths();
  readonly #nodes = new NodeRegistry();
  readonly #listeners = new Set<WorkListener>();
  readonly #ping: Database.Statement<[], unknown>;
  readonly #totalChanges: Database.Statement<[], { n: number }>;
  readonly #tableSizes: SqliteTableSizes;
  #statements: SqliteStatements | null = null;
  #durableStatements: DurableStatements | null = null;
  #triggerStatements: TriggerStatements | null = null;
  #auditStatements: AuditStatements | null = null;
  #closed = false;
  #closing: Promise<void> | null = null;
  /** Out of disk space: the last write that hit SQLITE_FULL, until a write commits again. */
  #full: { since: number; error: unknown; changes: number } | null = null;
  #fullErrors = 0;
  #fullProbe: NodeJS.Timeout | null = null;

  constructor(db: Database.Database, path: string, clock: () => number, lock: PidfileLock | null) {
    this.#db = db;
    this.path = path;
    this.#tableSizes = new SqliteTableSizes({ path, clock });
    this.#clock = clock;
    this.#lock = lock;
    this.#ping = db.prepare('SELECT 1');
    this.#totalChanges = db.prepare('SELECT total_changes() AS n');
    this.#writes = new GroupCommit<WriteEffects>(db, {
      create: createEffects,
      merge: mergeEffects,
      committed: (effects) => this.#committed(effects),
      error: (error) => toStoreError(error, path),
      settled: (errors, committed) => this.#noteSpace(errors, committed),
      timed: (seconds) => this.onCommitTimed?.(seconds),
    });
    this.#starts = new StartMarks(db, (mark) => this.#write(mark));
    try {
      this.#prepare();
    } catch {
      // Not migrated yet: migrate() prepares. Every other method assumes it ran.
    }
  }

  /**
   * Set by the metrics (obs/store-metrics.ts): called with each group commit's
   * duration, BEGIN to durable COMMIT (`synchronous=FULL`: the fsync). A plain
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
    return { full: this.#full !== null, fullSince: this.#full?.since ?? null, fullErrors: this.#fullErrors, retrying: this.#settles.retrying };
  }

  /**
   * A passive WAL checkpoint (copies committed pages back into the database
   * file without waiting for readers or blocking writers), for the metrics'
   * periodic checkpoint: `walFrames` in the WAL, `checkpointedFrames` copied;
   * `busy` when a reader or writer kept it from finishing. A WAL whose frames
   * are never all checkpointed grows without bound (a long-lived reader).
   */
  checkpoint(): { busy: boolean; walFrames: number; checkpointedFrames: number } {
    this.#assertOpen();
    const row = this.#db.pragma('wal_checkpoint(PASSIVE)') as Array<{ busy: number; log: number; checkpointed: number }>;
    const result = row[0] ?? { busy: 0, log: 0, checkpointed: 0 };
    return { busy: result.busy !== 0, walFrames: Math.max(0, result.log), checkpointedFrames: Math.max(0, result.checkpointed) };
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
    this.#prepare();
    return status;
  }

  /** Out of disk space: a small real write, so readiness comes back as soon as space does. */
  async ping(): Promise<void> {
    this.#assertOpen();
    this.#ping.get();
    if (this.#full) {
      await this.#probeSpace().catch(() => undefined);
      if (this.#full) throw toStoreError(this.#full.error, this.path);
    }
  }

  async close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#starts.close();
      this.#stopProbe();
      await this.#tableSizes.close();
      await this.#settles.close();
      await this.#writes.close();
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
      return jobs.map((job) => insertJob(ctx, job));
    });
  }

  // --- execution ----------------------------------------------------------

  lease(request: LeaseRequest): Promise<LeasedJob[]> {
    return this.#write(() => {
      const s = this.#s;
      return leaseJobs(s, request, this.#clock(), (id) => {
        const raw = s.fixed.eventById.get(id);
        return raw ? toEventRow(raw) : null;
      });
    });
  }

  heartbeat(jobId: string, token: string, leaseMs: number): Promise<FenceResult> {
    return this.#write(() => heartbeatJob(this.#s.fixed, jobId, token, leaseMs, this.#clock()));
  }

  /** Written at once, without waiting for the next group commit (start-marks.ts says why). */
  start(jobId: string, token: string): Promise<StartResult> {
    return this.#starts.add(() => startJob(this.#s.fixed, jobId, token));
  }

  complete(jobId: string, token: string, result: unknown): Promise<FenceResult> {
    return this.#settles.add((own) => completeJob(this.#s.fixed, jobId, token, result, this.#clock(), own));
  }

  fail(jobId: string, token: string, request: FailRequest): Promise<FenceResult> {
    return this.#settles.add((own) => failJob(this.#s.fixed, jobId, token, request, this.#clock(), own));
  }

  release(jobId: string, token: string, runAt?: number): Promise<FenceResult> {
    return this.#settles.add((own) => releaseJob(this.#s.fixed, jobId, token, this.#clock(), own, runAt));
  }

  // --- background ---------------------------------------------------------

  /** Moves at most 5000 jobs per call; when more are due, `nextDueAt` is <= now, so call again. */
  stageDue(): Promise<StageResult> {
    return this.#write((own) => {
      const s = this.#s.fixed;
      const now = this.#clock();
      const staged = s.stageDue.all({ now, limit: STAGE_BATCH });
      for (const { queue, handler } of staged) own.woken.add(queue, handler);
      const woken = durable.wakeDue(this.#durable(now, own), STAGE_BATCH);
      const d = this.#d.fixed;
      const nextDueAt = minOrNull(s.nextDue.get()?.t ?? null, d.nextWake.get()?.t ?? null);
      return woken.length > 0 ? { staged: staged.length, woken, nextDueAt } : { staged: staged.length, nextDueAt };
    });
  }

  /** Reclaims at most 1000 expired leases per call (oldest deadline first). */
  async reapExpired(options: ReclaimOptions): Promise<ReclaimedJob[]> {
    // The reaper asks every second and almost always finds nothing: an index
    // probe first, so an idle reap costs no write batch (no group-commit slot).
    this.#assertOpen();
    if (!this.#s.fixed.anyExpiredLease.get(this.#clock())) return [];
    return this.#write((own) => {
      const now = this.#clock();
      const expired = this.#s.fixed.expiredLeases.all(now, REAP_BATCH);
      return reclaimJobs(this.#s.fixed, expired, 'lease_expired', options, now, own);
    });
  }

  reclaimWorker(workerId: string, options: ReclaimOptions): Promise<ReclaimedJob[]> {
    return this.#write((own) => {
      const held = this.#s.fixed.workerLeases.all(workerId);
      return reclaimJobs(this.#s.fixed, held, 'crashed', options, this.#clock(), own);
    });
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
    const jobs = await this.#write((own) => {
      const s = this.#s.fixed;
      const now = this.#clock();
      return stale.flatMap((node) => {
        const expiredAt = node.heartbeatAt + request.staleAfterMs;
        return reclaimJobs(s, s.workerLeases.all(node.nodeId).map(({ id }) => ({ id, expired_at: expiredAt })), 'crashed', request, now, own);
      });
    });
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
    return this.#write(() => {
      const s = this.#s.fixed;
      const after = request.afterId === null ? (s.oldestWaitingJobId.get()?.id ?? null) : parseJobId(request.afterId);
      const newest = s.newestJobId.get()?.id ?? null;
      if (after === null || newest === null) return { restamped: 0, nextAfterId: null };
      // The first window starts just before the oldest waiting job.
      const from = request.afterId === null ? after - 1 : after;
      const until = from + Math.max(1, Math.floor(request.span));
      let restamped = 0;
      for (const stamp of request.stamps) {
        const keep = stamp.fairness === 'tenant' ? 1 : 0;
        restamped += s.restampWindow.run({ queue: stamp.queue, priority_ms: stamp.priorityMs, keep_turns: keep, after: from, until }).changes;
      }
      return { restamped, nextAfterId: until >= newest ? null : String(until) };
    });
  }

  prune(request: PruneRequest): Promise<{ jobs: number; events: number }> {
    return this.#write(() => {
      const s = this.#s.fixed;
      const size = Math.max(0, Math.floor(request.batchSize));
      // Deleting a job cascades to its attempts (foreign key ON DELETE CASCADE).
      let jobs = s.pruneFinished.run(request.finishedBefore, size).changes;
      if (jobs < size) jobs += s.pruneDead.run(request.deadBefore, size - jobs).changes;
      const events = s.pruneEvents.run(request.eventsBefore, size).changes;
      pruneTriggerGroups(this.#t, request.eventsBefore, this.#clock(), size);
      return { jobs, events };
    });
  }

  // --- operator actions ---------------------------------------------------

  cancel(jobId: string): Promise<JobRow | null> {
    return this.#write((own) => {
      const s = this.#s.fixed;
      const id = parseJobId(jobId);
      const before = id === null ? undefined : s.jobById.get(id);
      if (id === null || !before) return null;
      if (TERMINAL_STATES.includes(before.state)) return toJobRow(before);
      const now = this.#clock();
      const raw = s.cancel.get({ id, now })!;
      if (before.state === 'running') s.endAttempt.run(now, 'cancelled', null, id, before.lease_seq);
      // A suspended job is not in the queue depth (durable.ts); its wait is cancelled with it.
      if (before.state === 'suspended') durable.cancelWaits(this.#durable(now, own), id);
      else addDepth(own, raw.queue, -1);
      return toJobRow(raw);
    });
  }

  retry(jobId: string): Promise<JobRow | null> {
    return this.#write((own) => {
      const s = this.#s.fixed;
      const id = parseJobId(jobId);
      const before = id === null ? undefined : s.jobById.get(id);
      if (id === null || !before) return null;
      if (before.state !== 'dead' && before.state !== 'cancelled') return toJobRow(before);
      const raw = s.retry.get({ id, now: this.#clock() })!;
      addDepth(own, raw.queue, 1);
      own.woken.add(raw.queue, raw.handler);
      return toJobRow(raw);
    });
  }

  // --- durable execution (durable.ts) ---------------------------------------

  async getSteps(jobId: string): Promise<StepRow[]> {
    const n = parseJobId(jobId);
    return n === null ? [] : this.#readDurable().fixed.stepsByJob.all(n).map(durable.toStepRow);
  }

  recordStep(jobId: string, token: string, step: RecordStepRequest): Promise<RecordStepResult> {
    return this.#write((own) => durable.recordStep(this.#durable(this.#clock(), own), jobId, token, step));
  }

  suspend(jobId: string, token: string, request: SuspendRequest): Promise<SuspendResult> {
    return this.#write((own) => durable.suspend(this.#durable(this.#clock(), own), jobId, token, request));
  }

  resumeWait(waitId: string, input: unknown, resolvedBy: string): Promise<ResumeResult> {
    return this.#write((own) => durable.resumeWait(this.#durable(this.#clock(), own), waitId, input, resolvedBy));
  }

  async getWait(waitId: string): Promise<WaitRow | null> {
    const raw = this.#readDurable().fixed.waitById.get(waitId);
    return raw ? durable.toWaitRow(raw) : null;
  }

  async pendingWait(jobId: string): Promise<WaitRow | null> {
    const n = parseJobId(jobId);
    const raw = n === null ? undefined : this.#readDurable().fixed.pendingWaitOfJob.get(n);
    return raw ? durable.toWaitRow(raw) : null;
  }

  async listWaits(filter: WaitFilter): Promise<WaitRow[]> {
    return this.#readDurable().listWaits(filter).map(durable.toWaitRow);
  }

  async pendingInterrupts(): Promise<{ count: number; oldestCreatedAt: number | null }> {
    const row = this.#readDurable().fixed.pendingInterrupts.get()!;
    return { count: row.n, oldestCreatedAt: row.oldest };
  }

  // --- reads --------------------------------------------------------------

  async getJob(id: string): Promise<JobRow | null> {
    const n = parseJobId(id);
    const raw = n === null ? undefined : this.#read().fixed.jobById.get(n);
    return raw ? toJobRow(raw) : null;
  }

  async getAttempts(jobId: string): Promise<AttemptRow[]> {
    const n = parseJobId(jobId);
    return n === null ? [] : this.#read().fixed.attemptsByJob.all(n).map(toAttemptRow);
  }

  async listJobs(filter: JobFilter): Promise<JobRow[]> {
    let before: number | null = null;
    if (filter.before !== undefined) {
      before = parseJobId(filter.before);
      if (before === null) return []; // no job id sorts below a malformed cursor
    }
    return this.#read().listJobs(filter, before).map(toJobRow);
  }

  async getEvent(id: string): Promise<EventRow | null> {
    const raw = this.#read().fixed.eventById.get(id);
    return raw ? toEventRow(raw) : null;
  }

  async eventMerges(eventId: string): Promise<EventMerge[]> {
    this.#read();
    return eventMerges(this.#t, eventId);
  }

  async ensurePayloadIndexes(paths: ReadonlyArray<readonly string[]>): Promise<string[]> {
    const built: string[] = [];
    for (const path of paths) {
      const name = payloadIndexName(path); // checks the path: its segments go into the SQL as a literal
      if (this.#db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?").get(name)) continue;
      // The same expression listJobs writes, so the planner matches it. Runs at start, before the node takes work.
      this.#db.exec(`CREATE INDEX IF NOT EXISTS ${name} ON jobs (json_extract(payload, '$.${path.join('.')}'))`);
      built.push(name);
    }
    return built;
  }

  async queueStats(): Promise<QueueStats[]> {
    const s = this.#read().fixed;
    return toQueueStats(s.countsByQueue.all(), s.oldestQueued.all());
  }

  // --- API keys -----------------------------------------------------------

  createKey(key: ApiKeyRow): Promise<void> {
    return this.#write(() => {
      this.#s.fixed.insertKey.run(
        key.id,
        key.name,
        key.hash,
        JSON.stringify(key.scopes),
        key.handlers === null ? null : JSON.stringify(key.handlers),
        key.createdAt,
        key.expiresAt,
        key.revokedAt,
      );
    });
  }

  async findKeyByHash(hash: string): Promise<ApiKeyRow | null> {
    const raw = this.#read().fixed.keyByHash.get(hash);
    return raw ? toApiKeyRow(raw) : null;
  }

  async listKeys(): Promise<ApiKeyRow[]> {
    return this.#read().fixed.listKeys.all().map(toApiKeyRow);
  }

  /** True when the key existed and was not already revoked. */
  revokeKey(id: string): Promise<boolean> {
    return this.#write(() => this.#s.fixed.revokeKey.run(this.#clock(), id).changes > 0);
  }

  // --- node metadata ------------------------------------------------------

  async getMeta(key: string): Promise<string | null> {
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
  backupTo(file: string): Promise<BackupSnapshot> {
    this.#assertOpen();
    return snapshotSqlite(this.#db, file, { owner: this.#lock !== null });
  }

  reclaimAll(): Promise<ReclaimedJob[]> {
    return this.#write((own) => {
      const s = this.#s.fixed;
      return reclaimJobs(s, s.allRunning.all(), 'crashed', { poisonAfter: Number.MAX_SAFE_INTEGER }, this.#clock(), own);
    });
  }

  // --- audit trail --------------------------------------------------------

  appendAudit(entry: AuditEntry, seal: AuditSeal): Promise<AuditRecord> {
    return this.#write(() => this.#audit.append(entry, seal));
  }

  async listAudit(page: AuditPage): Promise<AuditRecord[]> {
    this.#assertOpen();
    return this.#audit.page(page);
  }

  async readAudit(range: AuditRange): Promise<AuditRecord[]> {
    this.#assertOpen();
    return this.#audit.range(range);
  }

  // --- internals ----------------------------------------------------------

  #write<T>(op: (own: WriteEffects, batch: Readonly<WriteEffects>) => T): Promise<T> {
    return this.#writes.submit(op);
  }

  #read(): SqliteStatements {
    this.#assertOpen();
    return this.#s;
  }

  #assertOpen(): void {
    if (this.#closed || this.#closing) throw new DroverError('store_unavailable', `the store ${this.path} is closed`);
  }

  get #s(): SqliteStatements {
    if (this.#statements) return this.#statements;
    try {
      return this.#prepare();
    } catch (error) {
      throw new DroverError('store_unavailable', `the store ${this.path} is not migrated; run \`drover migrate\``, {
        cause: error,
      });
    }
  }

  get #d(): DurableStatements {
    if (this.#durableStatements) return this.#durableStatements;
    this.#s; // prepares both, or says the store is not migrated
    return this.#durableStatements!;
  }

  get #t(): TriggerStatements {
    if (this.#triggerStatements) return this.#triggerStatements;
    this.#s; // prepares them all, or says the store is not migrated
    return this.#triggerStatements!;
  }

  #readDurable(): DurableStatements {
    this.#assertOpen();
    return this.#d;
  }

  #durable(now: number, own: WriteEffects): durable.DurableContext {
    return { s: this.#s.fixed, d: this.#d.fixed, now, own };
  }

  get #audit(): AuditStatements {
    if (this.#auditStatements) return this.#auditStatements;
    try {
      return (this.#auditStatements = new AuditStatements(this.#db));
    } catch (error) {
      throw new DroverError('store_unavailable', `the store ${this.path} has no audit table; run \`drover migrate\``, { cause: error });
    }
  }

  /** Prepare statements and count unfinished jobs; needs the migrated schema. */
  #prepare(): SqliteStatements {
    const statements = new SqliteStatements(this.#db);
    const durableStatements = new DurableStatements(this.#db);
    const triggerStatements = prepareTriggerStatements(this.#db);
    this.#depths.load(statements.fixed.unfinishedByQueue.all());
    this.#durableStatements = durableStatements;
    this.#triggerStatements = triggerStatements;
    this.#statements = statements;
    return statements;
  }

  #committed(effects: WriteEffects): void {
    this.#depths.apply(effects);
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

  /** Disk-full bookkeeping after each group commit (group-commit.ts `settled`). */
  #noteSpace(errors: readonly unknown[], committed: boolean): void {
    const full = errors.filter(isDiskFull);
    if (full.length > 0) {
      this.#fullErrors += full.length;
      this.#full = { since: this.#full?.since ?? this.#clock(), error: full[0], changes: this.#totalChanges.get()!.n };
      // Recover by itself: keep trying a small write until one commits, whether or not anything else writes.
      if (!this.#fullProbe && !this.#closing) {
        this.#fullProbe = setInterval(() => void this.#probeSpace().catch(() => undefined), FULL_PROBE_MS);
        this.#fullProbe.unref();
      }
    } else if (committed && this.#full && this.#totalChanges.get()!.n !== this.#full.changes) {
      // A batch that changed rows committed: there is room to write again (one that wrote nothing proves nothing).
      this.#full = null;
      this.#stopProbe();
    }
  }

  #probeSpace(): Promise<void> {
    return this.#write(() => {
      this.#s.fixed.setMeta.run('space_probe', String(this.#clock()));
    });
  }

  #stopProbe(): void {
    if (this.#fullProbe) clearInterval(this.#fullProbe);
    this.#fullProbe = null;
  }

  #intake(options: EnqueueOptions | undefined, own: WriteEffects, batch: Readonly<WriteEffects>): IntakeContext {
    return { s: this.#s.fixed, d: this.#d.fixed, t: this.#t, depths: this.#depths, now: this.#clock(), options, own, batch };
  }
}

function minOrNull(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  return b === null ? a : Math.min(a, b);
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
