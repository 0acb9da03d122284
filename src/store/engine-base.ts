/**
 * What both engines do the same way: forward each role off the hot path to
 * the part that plays it. An engine (sqlite/sqlite-engine.ts,
 * postgres/postgres-engine.ts) extends this, builds its parts from its own
 * core and implements the rest of `StorageEngine` itself: its connection,
 * intake, the hot path of a worker's lease (lease, start, heartbeat,
 * complete, fail, release), backup and its extras. The parts are a plain
 * field, not methods, so the timing wrapper (instrumented.ts), which times
 * every method on the prototype chain, sees exactly the engine's operations.
 */
import type { StepRow, SuspendRequest, WaitRow } from '../core/durable.js';
import type { ApiKeyRow, AttemptRow, AuditEntry, AuditRecord, EventRow, JobRow } from '../core/types.js';
import type { AuditPage, AuditRange, AuditSeal, AuditStore } from './roles/audit-store.js';
import type { RolePart } from './roles/capabilities.js';
import type { DurableStore, RecordStepRequest, RecordStepResult, ResumeResult, SuspendResult, WaitFilter } from './roles/durable-store.js';
import type { EventMerge, JobFilter, JobReads, QueueStats } from './roles/job-reads.js';
import type { JobStore, PruneRequest, ReclaimedJob, ReclaimOptions, RestampRequest, RestampResult, StageResult } from './roles/job-store.js';
import type { KeyStore } from './roles/key-store.js';
import type { MetaStore } from './roles/meta-store.js';
import type { DeadNodeRequest, DeadNodeResult, NodeHeartbeat, NodeRegistration, NodeRegistry, NodeRow } from './roles/node-registry.js';

/** The background sweeps and operator actions: the part of `JobStore` off the hot path. */
export type UpkeepPart = Pick<JobStore, 'stageDue' | 'reapExpired' | 'reclaimWorker' | 'reclaimAll' | 'restampJobs' | 'prune' | 'cancel' | 'retry'>;

/** One part per role an engine forwards; each engine's folder has its own. */
export interface EngineParts {
  readonly reads: RolePart<JobReads>;
  readonly durable: RolePart<DurableStore>;
  readonly upkeep: UpkeepPart;
  readonly nodes: RolePart<NodeRegistry>;
  readonly records: RolePart<KeyStore & MetaStore & AuditStore>;
}

/**
 * @example
 * class MyEngine extends EngineBase implements StorageEngine {
 *   protected override readonly parts: EngineParts;
 *   constructor(core: MyCore) {
 *     super();
 *     this.parts = { reads: new MyJobReads(core), durable: new MyDurableStore(core), upkeep: new MyUpkeep(core), nodes: new MyNodes(core), records: new MyRecords(core) };
 *   }
 *   // ...the connection, intake, the hot path and backup
 * }
 */
export abstract class EngineBase
  implements UpkeepPart, RolePart<NodeRegistry>, RolePart<DurableStore>, RolePart<JobReads>, RolePart<KeyStore & MetaStore & AuditStore>
{
  /** Set once in the engine's constructor. */
  protected abstract readonly parts: EngineParts;

  // --- background and operator actions (upkeep) ---------------------------

  stageDue(): Promise<StageResult> {
    return this.parts.upkeep.stageDue();
  }

  reapExpired(options: ReclaimOptions): Promise<ReclaimedJob[]> {
    return this.parts.upkeep.reapExpired(options);
  }

  reclaimWorker(workerId: string, options: ReclaimOptions): Promise<ReclaimedJob[]> {
    return this.parts.upkeep.reclaimWorker(workerId, options);
  }

  reclaimAll(): Promise<ReclaimedJob[]> {
    return this.parts.upkeep.reclaimAll();
  }

  restampJobs(request: RestampRequest): Promise<RestampResult> {
    return this.parts.upkeep.restampJobs(request);
  }

  prune(request: PruneRequest): Promise<{ jobs: number; events: number }> {
    return this.parts.upkeep.prune(request);
  }

  cancel(jobId: string): Promise<JobRow | null> {
    return this.parts.upkeep.cancel(jobId);
  }

  retry(jobId: string): Promise<JobRow | null> {
    return this.parts.upkeep.retry(jobId);
  }

  // --- nodes --------------------------------------------------------------

  registerNode(node: NodeRegistration): Promise<void> {
    return this.parts.nodes.registerNode(node);
  }

  heartbeatNode(node: NodeRegistration): Promise<NodeHeartbeat> {
    return this.parts.nodes.heartbeatNode(node);
  }

  reclaimDeadNodes(request: DeadNodeRequest): Promise<DeadNodeResult> {
    return this.parts.nodes.reclaimDeadNodes(request);
  }

  deregisterNode(node: NodeRegistration): Promise<void> {
    return this.parts.nodes.deregisterNode(node);
  }

  listNodes(): Promise<NodeRow[]> {
    return this.parts.nodes.listNodes();
  }

  // --- durable execution --------------------------------------------------

  getSteps(jobId: string): Promise<StepRow[]> {
    return this.parts.durable.getSteps(jobId);
  }

  recordStep(jobId: string, token: string, step: RecordStepRequest): Promise<RecordStepResult> {
    return this.parts.durable.recordStep(jobId, token, step);
  }

  suspend(jobId: string, token: string, request: SuspendRequest): Promise<SuspendResult> {
    return this.parts.durable.suspend(jobId, token, request);
  }

  resumeWait(waitId: string, input: unknown, resolvedBy: string): Promise<ResumeResult> {
    return this.parts.durable.resumeWait(waitId, input, resolvedBy);
  }

  getWait(waitId: string): Promise<WaitRow | null> {
    return this.parts.durable.getWait(waitId);
  }

  pendingWait(jobId: string): Promise<WaitRow | null> {
    return this.parts.durable.pendingWait(jobId);
  }

  listWaits(filter: WaitFilter): Promise<WaitRow[]> {
    return this.parts.durable.listWaits(filter);
  }

  pendingInterrupts(): Promise<{ count: number; oldestCreatedAt: number | null }> {
    return this.parts.durable.pendingInterrupts();
  }

  // --- reads --------------------------------------------------------------

  getJob(id: string): Promise<JobRow | null> {
    return this.parts.reads.getJob(id);
  }

  getAttempts(jobId: string): Promise<AttemptRow[]> {
    return this.parts.reads.getAttempts(jobId);
  }

  listJobs(filter: JobFilter): Promise<JobRow[]> {
    return this.parts.reads.listJobs(filter);
  }

  getEvent(id: string): Promise<EventRow | null> {
    return this.parts.reads.getEvent(id);
  }

  eventMerges(eventId: string): Promise<EventMerge[]> {
    return this.parts.reads.eventMerges(eventId);
  }

  ensurePayloadIndexes(paths: ReadonlyArray<readonly string[]>): Promise<string[]> {
    return this.parts.reads.ensurePayloadIndexes(paths);
  }

  queueStats(): Promise<QueueStats[]> {
    return this.parts.reads.queueStats();
  }

  handlersWithQueuedJobs(handlers: readonly string[]): Promise<string[]> {
    return this.parts.reads.handlersWithQueuedJobs(handlers);
  }

  // --- API keys, node metadata, audit trail -------------------------------

  createKey(key: ApiKeyRow): Promise<void> {
    return this.parts.records.createKey(key);
  }

  findKeyByHash(hash: string): Promise<ApiKeyRow | null> {
    return this.parts.records.findKeyByHash(hash);
  }

  listKeys(): Promise<ApiKeyRow[]> {
    return this.parts.records.listKeys();
  }

  revokeKey(id: string): Promise<boolean> {
    return this.parts.records.revokeKey(id);
  }

  getMeta(key: string): Promise<string | null> {
    return this.parts.records.getMeta(key);
  }

  setMeta(key: string, value: string): Promise<void> {
    return this.parts.records.setMeta(key, value);
  }

  updateMeta(key: string, update: (current: string | null) => string | null): Promise<string | null> {
    return this.parts.records.updateMeta(key, update);
  }

  appendAudit(entry: AuditEntry, seal: AuditSeal): Promise<AuditRecord> {
    return this.parts.records.appendAudit(entry, seal);
  }

  listAudit(page: AuditPage): Promise<AuditRecord[]> {
    return this.parts.records.listAudit(page);
  }

  readAudit(range: AuditRange): Promise<AuditRecord[]> {
    return this.parts.records.readAudit(range);
  }
}
