/**
 * The storage engine interface: the one seam between Drover's engine-agnostic
 * runtime and the SQL that each engine runs. Methods are named for the state
 * transitions they perform. Every engine passes the same conformance suite
 * (`test/store/conformance.ts`).
 *
 * Rules every engine keeps:
 * - Each method is atomic: it commits entirely or not at all.
 * - A method that takes a lease token changes nothing when the token is stale
 *   (the job was reaped, released or leased again) and says so in its result.
 * - Time comes from the injected clock, never from the database server.
 */
import type {
  ApiKeyRow,
  AttemptOutcome,
  AuditEntry,
  AuditRecord,
  AttemptRow,
  DeadReason,
  EventInput,
  EventRow,
  JobRow,
  JobState,
  LeasedJob,
  NewJob,
} from '../core/types.js';
import type { RatePolicy } from '../core/rate-window.js';

/** A start under a shared rate limit: taken, or refused until `retryAt`. */
export type RateStart = { ok: true } | { ok: false; retryAt: number };

export interface StoreCapabilities {
  readonly engine: 'sqlite' | 'postgres';
  /** Several nodes may share the store (leases fence across processes). */
  readonly multiNode: boolean;
  /** The engine pushes wakeups to other processes (LISTEN/NOTIFY). */
  readonly crossProcessNotify: boolean;
  /**
   * Writes submitted in one event-loop turn commit together, so a lease
   * requested alongside an enqueue joins its commit (see runtime.ts). Without
   * it, such a lease is an extra round trip that finds nothing.
   */
  readonly groupCommit: boolean;
}

export interface QueueLimit {
  /** Jobs not yet finished (scheduled + queued + running) allowed in the queue. */
  maxDepth: number;
}

export interface EnqueueOptions {
  /** Per-queue limits; an insert that would exceed one throws `QueueFullError`. */
  queueLimits?: ReadonlyMap<string, QueueLimit>;
}

export interface EnqueueResult {
  job: JobRow;
  /** False when the idempotency key matched an existing job (nothing was written). */
  created: boolean;
}

export interface IngestItem {
  event: EventInput & { id: string };
  /** The jobs the event fans out to (computed by the caller from the triggers). */
  jobs: NewJob[];
}

export interface IngestResult {
  event: EventRow;
  jobs: JobRow[];
  /** False when an event with this id already existed: the original is returned and nothing is written. */
  created: boolean;
}

export interface LeaseRequest {
  workerId: string;
  /**
   * Handlers this worker runs, each with how many more jobs it may take now
   * and, optionally, how long its jobs' leases last (its own timeout plus a
   * margin): a job's lease follows its own handler, not the slowest one asked for.
   */
  handlers: ReadonlyArray<{ name: string; max: number; leaseMs?: number }>;
  /** Upper bound on jobs returned in total. */
  limit: number;
  /** Lease duration of jobs whose handler entry gives none. */
  leaseMs: number;
  /** The API key leasing over HTTP, stored with each lease (only that key may settle it); absent for the node's own leases. */
  keyId?: string | null;
  /** Queues not to lease from (paused). */
  excludeQueues?: readonly string[];
}

export type FenceResult = { ok: true; job: JobRow } | { ok: false; reason: 'stale_lease' | 'not_found' };

/** A start mark's answer: only whether it matched (the runtime waits for it per job, so no row comes back). */
export type StartResult = { ok: true } | { ok: false; reason: 'stale_lease' | 'not_found' };

export interface FailRequest {
  error: string;
  /** `crashed`: its handler thread was killed under it (out of memory, died); set `crashed` too. */
  outcome: Extract<AttemptOutcome, 'failed' | 'timed_out' | 'crashed'>;
  /** Retry at this time; `null` means the job is dead now. */
  retryAt: number | null;
  deadReason?: DeadReason;
  /**
   * The attempt's worker was killed under it (a thread over its memory limit,
   * a thread that died): count it in the job's `crashes`, like a lease expiry,
   * so `poisonAfter` sees it.
   */
  crashed?: boolean;
}

export interface ReclaimOptions {
  /** A job whose started handler was reclaimed this many times goes to `dead` with reason `poison`. */
  poisonAfter: number;
}

export interface ReclaimedJob {
  id: string;
  handler: string;
  queue: string;
  state: JobState; // 'queued' or 'dead'
  /** Its handler had started (`start`): counted as a crash. False: handed back unspent. */
  started: boolean;
}

export interface StageResult {
  staged: number;
  /** Earliest runAt still in the future, or null when nothing is scheduled. */
  nextDueAt: number | null;
}

export interface JobFilter {
  state?: JobState;
  handler?: string;
  queue?: string;
  eventId?: string;
  /** Keyset cursor: return jobs with id < this (newest first). */
  before?: string;
  limit: number;
}

export interface QueueStats {
  queue: string;
  counts: Record<JobState, number>;
  /** runAt of the oldest queued job (ms), or null when none is queued. */
  oldestQueuedAt: number | null;
}

export interface PruneRequest {
  /** Delete succeeded and cancelled jobs finished before this time. */
  finishedBefore: number;
  /** Delete dead jobs finished before this time. */
  deadBefore: number;
  /** Delete events received before this time that no remaining job refers to. */
  eventsBefore: number;
  /** Rows per batch; the engine never holds a write lock for more. */
  batchSize: number;
}

/**
 * Chains and signs one audit entry, given the newest record so far (null for
 * the first). Engines call it inside the transaction that inserts the record,
 * so no other record can come between; it must be synchronous and pure.
 */
export type AuditSeal = (entry: AuditEntry, previous: { seq: number; hash: string } | null) => AuditRecord;

export interface AuditPage {
  limit: number;
  /** Newest first: records with seq < before (a cursor). */
  before?: number;
}

export interface AuditRange {
  /** Engines may return fewer (at most 10,000 per call); page on with `after` until a call returns none. */
  limit: number;
  /** Oldest first: records with seq > after (default 0, from the first). */
  after?: number;
}

/** What a backup holds, measured on the copy itself (not on the live store). */
export interface BackupSnapshot {
  schemaVersion: number;
  /** Rows per table in the copy. */
  counts: Record<string, number>;
}

export interface MigrationStatus {
  /** Version the database is at after migrating. */
  current: number;
  /** Highest version this binary knows. */
  latest: number;
  applied: number[];
}

/** Called after a commit that made work available (new due jobs). */
export type WorkListener = (queues: readonly string[]) => void;

export interface MigrateOptions {
  /** False: only check the schema version (throws when it is behind or ahead). Default true. */
  apply?: boolean;
}

/** One running process of a node: `nodeId` is stable across restarts (it is the worker id), `incarnation` is new per process. */
export interface NodeRegistration {
  nodeId: string;
  incarnation: string;
}

export interface NodeRow extends NodeRegistration {
  startedAt: number;
  heartbeatAt: number;
}

/**
 * What a node's heartbeat found: `ok`; `unknown` when its row is gone (peers
 * declared it dead and reclaimed its jobs); `superseded` when another process
 * registered the same node id since.
 */
export type NodeHeartbeat = 'ok' | 'unknown' | 'superseded';

export interface DeadNodeRequest extends ReclaimOptions {
  /** A node whose last heartbeat is older than this is dead. */
  staleAfterMs: number;
  /** Never declare this node dead (the caller itself). */
  exceptNodeId?: string;
}

export interface DeadNodeResult {
  /** Node ids declared dead (their rows are deleted). */
  nodes: string[];
  /** Their running jobs, requeued (or poisoned) as `crashed`. */
  jobs: ReclaimedJob[];
}

export interface StorageEngine {
  readonly capabilities: StoreCapabilities;

  /** Apply pending migrations; throws `SchemaTooNewError` when the store is newer than this binary. */
  migrate(options?: MigrateOptions): Promise<MigrationStatus>;
  /** Cheap round trip for readiness. */
  ping(): Promise<void>;
  close(): Promise<void>;

  /** Subscribe to "work is available" notifications; returns an unsubscribe function. */
  onWork(listener: WorkListener): () => void;

  // --- intake -------------------------------------------------------------
  /** Insert events and their fan-out jobs, each item in all-or-nothing fashion, in one transaction. */
  ingest(items: readonly IngestItem[], options?: EnqueueOptions): Promise<IngestResult[]>;
  /** Insert jobs in one transaction; idempotency keys deduplicate per handler. */
  enqueue(jobs: readonly NewJob[], options?: EnqueueOptions): Promise<EnqueueResult[]>;

  // --- execution ----------------------------------------------------------
  /** Take up to `limit` due jobs, highest priority first, honouring concurrency keys. */
  lease(request: LeaseRequest): Promise<LeasedJob[]>;
  /**
   * Record that the job's handler is about to run; call it, and wait for it,
   * before running the handler. Until then a reclaim of the lease (its holder
   * died, it expired) hands the job back with its attempt and crash counts
   * unchanged: a job leased ahead and never run is not a crash. After it, a
   * reclaim counts a crash toward `poisonAfter`.
   */
  start(jobId: string, token: string): Promise<StartResult>;
  /** Extend a lease to now + leaseMs. */
  heartbeat(jobId: string, token: string, leaseMs: number): Promise<FenceResult>;
  /** Mark succeeded with the result, once. */
  complete(jobId: string, token: string, result: unknown): Promise<FenceResult>;
  /** Record a failed attempt; retry later or go dead. */
  fail(jobId: string, token: string, request: FailRequest): Promise<FenceResult>;
  /**
   * Give a lease back without spending the attempt (graceful shutdown; a job
   * held back by a rate limit or an open breaker). With `runAt` in the future
   * the job is `scheduled` for then instead of queued at once.
   */
  release(jobId: string, token: string, runAt?: number): Promise<FenceResult>;

  // --- background ---------------------------------------------------------
  /** Move scheduled jobs whose runAt has come to `queued`. */
  stageDue(): Promise<StageResult>;
  /** Requeue (or poison) running jobs whose lease deadline has passed. */
  reapExpired(options: ReclaimOptions): Promise<ReclaimedJob[]>;
  /** Requeue (or poison) every running job held by this worker id (a previous incarnation). */
  reclaimWorker(workerId: string, options: ReclaimOptions): Promise<ReclaimedJob[]>;
  /** Delete old finished jobs and events, one bounded batch; returns rows deleted. */
  prune(request: PruneRequest): Promise<{ jobs: number; events: number }>;

  // --- nodes (heartbeats and dead-node reclaim) ----------------------------
  /**
   * Record this process as the live incarnation of `nodeId` (replacing an
   * earlier one). Throws `config_invalid` when another live process holds the
   * same node id (engines that can tell).
   */
  registerNode(node: NodeRegistration): Promise<void>;
  /** One small write: this incarnation is alive. */
  heartbeatNode(node: NodeRegistration): Promise<NodeHeartbeat>;
  /** Declare nodes silent for `staleAfterMs` dead: delete them and requeue (or poison) their running jobs. */
  reclaimDeadNodes(request: DeadNodeRequest): Promise<DeadNodeResult>;
  /** Remove this incarnation's row (graceful shutdown, after its leases are released). */
  deregisterNode(node: NodeRegistration): Promise<void>;
  listNodes(): Promise<NodeRow[]>;

  // --- operator actions ---------------------------------------------------
  /** Cancel a job that has not finished; a running job's lease is revoked. */
  cancel(jobId: string): Promise<JobRow | null>;
  /** Run a dead or cancelled job again (attempt budget starts over). */
  retry(jobId: string): Promise<JobRow | null>;

  // --- reads --------------------------------------------------------------
  getJob(id: string): Promise<JobRow | null>;
  getAttempts(jobId: string): Promise<AttemptRow[]>;
  listJobs(filter: JobFilter): Promise<JobRow[]>;
  getEvent(id: string): Promise<EventRow | null>;
  queueStats(): Promise<QueueStats[]>;

  // --- API keys -----------------------------------------------------------
  createKey(key: ApiKeyRow): Promise<void>;
  findKeyByHash(hash: string): Promise<ApiKeyRow | null>;
  listKeys(): Promise<ApiKeyRow[]>;
  revokeKey(id: string): Promise<boolean>;

  // --- shared rate limits ---------------------------------------------------
  /**
   * Take one start under a dispatch rate limit kept in the store, so every
   * node sharing it counts against one window (`scope`: handler and key).
   * Engines that serve several nodes implement it; a single-node engine
   * leaves it out and the runtime keeps the window in memory.
   */
  takeRateStart?(scope: string, policy: RatePolicy, now: number): Promise<RateStart>;

  // --- node metadata ------------------------------------------------------
  getMeta(key: string): Promise<string | null>;
  setMeta(key: string, value: string): Promise<void>;
  /**
   * Read-modify-write one value atomically: `update` gets the stored value
   * (null: none) and returns the value to store (null: leave it as it is).
   * Callers on every node sharing the store are served one at a time per
   * key, so none overwrites a change it has not seen. Resolves to the value
   * stored afterwards. `update` must be quick and must not throw.
   */
  updateMeta(key: string, update: (current: string | null) => string | null): Promise<string | null>;

  // --- backup and restore -------------------------------------------------
  /**
   * Write a consistent copy of the whole store to `file` while it keeps
   * serving (SQLite: a database file; PostgreSQL: a `pg_dump` archive).
   * The file must not exist.
   */
  backupTo(file: string): Promise<BackupSnapshot>;
  /** Requeue every running job whoever holds it (after a restore no restored lease has a live holder); never poisons. */
  reclaimAll(): Promise<ReclaimedJob[]>;

  // --- audit trail --------------------------------------------------------
  /** Append one record: `seal` chains it to the newest record, atomically. */
  appendAudit(entry: AuditEntry, seal: AuditSeal): Promise<AuditRecord>;
  /** Newest first, for `GET /v1/audit`. */
  listAudit(page: AuditPage): Promise<AuditRecord[]>;
  /** Oldest first, for verification and export. */
  readAudit(range: AuditRange): Promise<AuditRecord[]>;
}
