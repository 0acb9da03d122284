/**
 * The storage engine interface: the one seam between Drover's engine-agnostic
 * runtime and the SQL that each engine runs. It is the sum of small roles
 * (`roles/`), each a concern a consumer can take alone: a consumer that only
 * reads API keys takes a `KeyStore`, not the whole engine. Methods are named
 * for the state transitions they perform. Every engine passes the same
 * conformance suite (`test/store/conformance.ts`).
 *
 * Rules every engine keeps:
 * - Each method is atomic: it commits entirely or not at all.
 * - A method that takes a lease token changes nothing when the token is stale
 *   (the job was reaped, released or leased again) and says so in its result.
 * - Time comes from the injected clock, never from the database server.
 * - An optional method exists exactly when its capability is declared
 *   (`roles/capabilities.ts`, `OPTIONAL_METHODS`).
 */
import type { AuditStore } from './roles/audit-store.js';
import type { BackupStore } from './roles/backup-store.js';
import type { DurableStore } from './roles/durable-store.js';
import type { StoreConnection } from './roles/connection.js';
import type { JobReads } from './roles/job-reads.js';
import type { JobStore } from './roles/job-store.js';
import type { KeyStore } from './roles/key-store.js';
import type { MetaStore } from './roles/meta-store.js';
import type { NodeRegistry } from './roles/node-registry.js';
import type { SharedRateLimits } from './roles/shared-rate-limits.js';

export type { StoreCapabilities, StoreRole } from './roles/capabilities.js';
export type { MigrateOptions, MigrationStatus, StoreConnection, WorkListener } from './roles/connection.js';
export type {
  EnqueueOptions,
  IntakeLease,
  EnqueueResult,
  FailRequest,
  FenceResult,
  MatchResult,
  StartResult,
  StartWatch,
  WithoutRow,
  IngestItem,
  IngestResult,
  JobStore,
  LeaseRequest,
  PruneRequest,
  QueueLimit,
  QueueStamp,
  ReclaimedJob,
  ReclaimOptions,
  RestampRequest,
  RestampResult,
  StageResult,
  TriggerOutcome,
} from './roles/job-store.js';
export type { EventMerge, JobFilter, JobReads, QueueStats } from './roles/job-reads.js';
export type { DeadNodeRequest, DeadNodeResult, NodeHeartbeat, NodeRegistration, NodeRegistry, NodeRow } from './roles/node-registry.js';
export type { KeyStore } from './roles/key-store.js';
export type { MetaStore } from './roles/meta-store.js';
export type { AuditPage, AuditRange, AuditSeal, AuditStore } from './roles/audit-store.js';
export type { BackupSnapshot, BackupStore } from './roles/backup-store.js';
export type { RateStart, SharedRateLimits } from './roles/shared-rate-limits.js';
export type {
  DurableStore,
  RecordStepRequest,
  RecordStepResult,
  ResolvedWait,
  ResumeResult,
  SuspendResult,
  WaitFilter,
} from './roles/durable-store.js';

/**
 * Every role an engine plays. `takeRateStart` is there only on engines that
 * declare `capabilities.sharedRateLimits` (use `sharedRateLimitsOf(store)`).
 */
export interface StorageEngine
  extends StoreConnection,
    JobStore,
    JobReads,
    NodeRegistry,
    KeyStore,
    MetaStore,
    AuditStore,
    BackupStore,
    DurableStore,
    Partial<Pick<SharedRateLimits, 'takeRateStart'>> {}
