/**
 * Every change to a job's state: intake, the execution transitions (each
 * fenced by the lease token), the background sweeps and the operator actions.
 * Methods are named for the transition they perform.
 */
import type { ControlKind } from '../../core/trigger-control.js';
import type { AttemptOutcome, DeadReason, EventInput, EventRow, JobRow, JobState, LeasedJob, NewJob } from '../../core/types.js';
import type { StoreRole } from './capabilities.js';
import type { ResolvedWait } from './durable-store.js';
import type { WaitRow } from '../../core/durable.js';
import type { LeaseCapReport, LeaseCaps } from '../../core/lease-caps.js';

export interface QueueLimit {
  /** Jobs not yet finished (scheduled + queued + running) allowed in the queue. */
  maxDepth: number;
  /** `'tenant'`: the store gives each new job its tenant's next turn (`fair_tag`); absent or `'none'`: no turns. */
  fairness?: 'none' | 'tenant';
}

export interface EnqueueOptions {
  /** Per-queue limits; an insert that would exceed one throws `QueueFullError`. */
  queueLimits?: ReadonlyMap<string, QueueLimit>;
  /**
   * Engines with `leaseAtIntake`: lease some of the new jobs to this node in
   * the insert itself, marked started (the dispatcher holds a free slot for
   * each). `leaseMs` is parallel to the jobs: a job's lease duration, or null
   * to insert it as usual. Such jobs come back `leased`; an engine may lease
   * fewer (a call it cannot insert in one statement), never more.
   */
  lease?: IntakeLease;
}

export interface IntakeLease {
  workerId: string;
  leaseMs: ReadonlyArray<number | null>;
}

export interface EnqueueResult {
  job: JobRow;
  /** False when the idempotency key matched an existing job (nothing was written). */
  created: boolean;
  /** Leased to the caller by the insert (`EnqueueOptions.lease`) and marked started: the caller must run it or release it. */
  leased?: LeasedJob;
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
  /** Suspended jobs this event woke (their `event` waits matched it), in the same transaction. */
  resolvedWaits?: ResolvedWait[];
  /**
   * What debounce, throttle or batch triggers did with this event's jobs;
   * present only when some did. A job the event was merged into (`merged`)
   * is in `jobs` with payload null: a batch's payload grows with each event,
   * and reading it back on every append would cost O(n²) per batch; read the
   * job for it.
   */
  controls?: TriggerOutcome[];
}

/**
 * How a controlled trigger (core/trigger-control.ts) handled one job of an
 * event. debounce/batch: the job the event went into, `merged` when an
 * earlier event had opened it (the event made no job of its own).
 * throttle: `delayedMs`, how long past the event its job waits for a slot.
 */
export interface TriggerOutcome {
  jobId: string;
  handler: string;
  kind: ControlKind;
  merged: boolean;
  delayedMs: number;
}

export interface LeaseRequest {
  workerId: string;
  /**
   * Handlers this worker runs, each with how many more jobs it may take now
   * and, optionally, how long its jobs' leases last (its own timeout plus a
   * margin): a job's lease follows its own handler, not the slowest one asked for.
   * `start`: how many of its jobs (the first in lease order) the caller starts
   * the moment the lease returns. An engine may record their start marks in
   * the lease itself, so their `start` calls answer without a round trip;
   * an engine that does not just marks them when `start` is called.
   */
  handlers: ReadonlyArray<{ name: string; max: number; leaseMs?: number; start?: number }>;
  /** Upper bound on jobs returned in total. */
  limit: number;
  /** Lease duration of jobs whose handler entry gives none. */
  leaseMs: number;
  /**
   * The jobs will run in this process (the node's own dispatcher), which a
   * power cut ends together with any write the cut undoes: an engine may
   * answer such a lease once committed, before it is on disk (SQLite,
   * sqlite-engine.ts `lease`). Absent or false (a remote worker's lease over
   * HTTP, whose holder would outlive the cut): answered only once durable.
   */
  inProcess?: boolean;
  /** The API key leasing over HTTP, stored with each lease (only that key may settle it); absent for the node's own leases. */
  keyId?: string | null;
  /** Queues not to lease from (paused). */
  excludeQueues?: readonly string[];
  /**
   * Lease caps (core/lease-caps.ts), counted by the engine inside the lease
   * so they hold across concurrent calls and nodes: a tenant's running jobs,
   * the worker id's, the key's. Absent: nothing beyond handler room and keys.
   */
  caps?: LeaseCaps;
  /** Filled by the engine: which caps held jobs back in this call. */
  capped?: LeaseCapReport;
}

export type FenceResult = { ok: true; job: JobRow } | { ok: false; reason: 'stale_lease' | 'not_found' };

/** Whether a fenced write matched, without the job's row. */
export type MatchResult = { ok: true } | { ok: false; reason: 'stale_lease' | 'not_found' };

/** A start mark's answer: only whether it matched (the runtime waits for it per job, so no row comes back). */
export type StartResult = MatchResult;

/**
 * The caller's side of a start mark answered once it is on its way
 * (`StoreCapabilities.startOnSend`): `start` has already resolved
 * `{ ok: true }` and the handler may be running when one of these is called.
 * Neither is called when the mark matched, nor when `start` waited for it.
 */
export interface StartWatch {
  /**
   * Called as `start` answers at send: `settled` resolves (never rejects)
   * once the store has answered the mark, after `lost` or `failed` if either
   * is called. A caller that writes the attempt's outcome after it cannot
   * have its completion overtake its own mark.
   */
  answered(settled: Promise<unknown>): void;
  /** The mark found the lease gone (cancelled, reclaimed, leased again): the attempt holds nothing. */
  lost(result: Extract<StartResult, { ok: false }>): void;
  /** The mark's statement failed: the start may not be recorded. */
  failed(error: unknown): void;
}

/**
 * Passed by a caller that only needs to know whether the fence held (the
 * node's own dispatcher): the engine need not read the job's row back, which
 * on PostgreSQL is a parse of every column of every completed job.
 */
export interface WithoutRow {
  row: false;
}

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
  /**
   * When its holder's claim lapsed (ms): the lease's expiry (`reapExpired`),
   * or the dead node's last heartbeat plus `staleAfterMs` (`reclaimDeadNodes`).
   * Absent where no claim lapsed (`reclaimWorker` at start, `reclaimAll`).
   * `drover_recovery_latency_seconds` measures from it to the requeue.
   */
  expiredAt?: number;
}

export interface StageResult {
  staged: number;
  /** Suspended jobs queued again because their sleep ended or their wait timed out (waits now `resolved` or `timed_out`). */
  woken?: WaitRow[];
  /** Earliest runAt still in the future, or null when nothing is scheduled. */
  nextDueAt: number | null;
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

/** A queue's lease-order stamps as its policy now sets them (core/queue-policy.ts). */
export interface QueueStamp {
  queue: string;
  priorityMs: number;
  /** `'none'`: waiting jobs lose their turns (`fair_tag` 0); `'tenant'`: they keep them. */
  fairness: 'none' | 'tenant';
}

export interface RestampRequest {
  stamps: readonly QueueStamp[];
  /** Continue after this job id (a previous call's `nextAfterId`); null: start at the oldest waiting job. */
  afterId: string | null;
  /** Job ids one call covers (a window of ids, not a count of changed rows): bounds how long it holds the write lock. */
  span: number;
}

export interface RestampResult {
  /** Waiting jobs in the window whose stamp was changed. */
  restamped: number;
  /** Where the next call continues; null: the window reached the newest job. */
  nextAfterId: string | null;
}

export interface JobStore extends StoreRole {
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
   *
   * `watch` (engines with `capabilities.startOnSend`, ignored by others): the
   * engine may answer `{ ok: true }` once the mark is handed to the operating
   * system on its way to the store, before the store has answered; a mark
   * that then does not hold is reported to `watch`. Pass it only while the
   * lease cannot have expired (the caller's clock says it is young).
   */
  start(jobId: string, token: string, watch?: StartWatch): Promise<StartResult>;
  /** Extend a lease to now + leaseMs. */
  heartbeat(jobId: string, token: string, leaseMs: number): Promise<FenceResult>;
  /** Mark succeeded with the result, once. */
  complete(jobId: string, token: string, result: unknown): Promise<FenceResult>;
  complete(jobId: string, token: string, result: unknown, options: WithoutRow): Promise<MatchResult>;
  /** Record a failed attempt; retry later or go dead. */
  fail(jobId: string, token: string, request: FailRequest): Promise<FenceResult>;
  /**
   * Give a lease back without spending the attempt (graceful shutdown; a job
   * held back by a rate limit or an open breaker). With `runAt` in the future
   * the job is `scheduled` for then instead of queued at once.
   */
  release(jobId: string, token: string, runAt?: number): Promise<FenceResult>;

  // --- background ---------------------------------------------------------
  /** Move scheduled jobs whose runAt has come to `queued`, and suspended jobs whose wake time has come (sleep over, wait timed out). `nextDueAt` includes wake times. */
  stageDue(): Promise<StageResult>;
  /** Requeue (or poison) running jobs whose lease deadline has passed. */
  reapExpired(options: ReclaimOptions): Promise<ReclaimedJob[]>;
  /** Requeue (or poison) every running job held by this worker id (a previous incarnation). */
  reclaimWorker(workerId: string, options: ReclaimOptions): Promise<ReclaimedJob[]>;
  /** Requeue every running job whoever holds it (after a restore no restored lease has a live holder); never poisons. */
  reclaimAll(): Promise<ReclaimedJob[]>;
  /**
   * Give the queued and scheduled jobs of each queue, within one window of
   * job ids, the stamp their queue's weights now set (a weight change in the
   * config), and clear their turns when the queue is no longer fair; running,
   * suspended and finished jobs keep theirs. Call it again
   * with `nextAfterId` until that is null.
   */
  restampJobs(request: RestampRequest): Promise<RestampResult>;
  /** Delete old finished jobs and events, one bounded batch; returns rows deleted. */
  prune(request: PruneRequest): Promise<{ jobs: number; events: number }>;

  // --- operator actions ---------------------------------------------------
  /** Cancel a job that has not finished; a running job's lease is revoked; a suspended job's wait becomes `cancelled`. */
  cancel(jobId: string): Promise<JobRow | null>;
  /** Run a dead or cancelled job again (attempt budget starts over). */
  retry(jobId: string): Promise<JobRow | null>;
}
