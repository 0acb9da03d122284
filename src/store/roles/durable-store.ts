/**
 * Durable execution's rows: a job's finished steps and the wait of a
 * suspended job. Every write that a handler's attempt makes is fenced by its
 * lease token (a stale holder can record nothing); the wake-ups (an event, a
 * resume, a timeout) are compare-and-set on the wait, in the same transaction
 * that queues the job again, so nothing wakes a job twice.
 *
 * Never-miss rule for events (docs/durable-execution.md): the suspend that
 * records an `event` wait also looks back at events accepted since the step
 * began, and `ingest` matches pending waits in the transaction that accepts
 * the event; the engine orders the two (PostgreSQL: a per-event-name advisory
 * lock, shared for ingest, exclusive for suspend) so one of them always sees
 * the other.
 */
import type { DurableLimits, StepRow, SuspendReason, SuspendRequest, WaitRow, WaitState } from '../../core/durable.js';
import type { EventRow, JobRow } from '../../core/types.js';
import type { StoreRole } from './capabilities.js';

export interface RecordStepRequest {
  name: string;
  seq: number;
  kind: StepRow['kind'];
  startedAt: number;
  result: unknown;
  limits: DurableLimits;
}

/**
 * `limit`: the step would pass a limit (`step_result_too_large`,
 * `too_many_steps`, `job_state_too_large`), nothing was written; `duplicate`:
 * a step with this name is already stored (a second writer lost).
 */
export type RecordStepResult =
  | { ok: true; step: StepRow }
  | { ok: false; reason: 'stale_lease' | 'not_found' | 'duplicate' }
  | { ok: false; reason: 'limit'; limit: 'step_result_too_large' | 'too_many_steps' | 'job_state_too_large'; message: string };

/**
 * `suspended`: the job is `suspended` (attempt ended with outcome
 * `suspended`, no retry spent, lease and concurrency slot freed).
 * `resolved`: an `event` wait found its event in the look-back, so the job
 * was not suspended: the step is stored with the event as its result and the
 * attempt carries on with it.
 */
export type SuspendResult =
  | { ok: true; suspended: true; wait: WaitRow; job: JobRow }
  | { ok: true; suspended: false; step: StepRow }
  | { ok: false; reason: 'stale_lease' | 'not_found' };

export interface WaitFilter {
  kind?: SuspendReason;
  state?: WaitState;
  handler?: string;
  /** Keyset cursor: waits with id-order before this one (newest first). */
  before?: string;
  limit: number;
}

/**
 * A resume: `resumed` queued the job (the step stored with `input` as its
 * result); `conflict`: the wait is no longer pending (resumed already, timed
 * out, cancelled), with its state; `not_found`: no such interrupt.
 */
export type ResumeResult =
  | { ok: true; wait: WaitRow; job: JobRow }
  | { ok: false; reason: 'conflict'; wait: WaitRow }
  | { ok: false; reason: 'not_found' };

export interface DurableStore extends StoreRole {
  /** The job's finished steps in `seq` order (empty for a job that never ran one). */
  getSteps(jobId: string): Promise<StepRow[]>;
  /** Store a finished step, fenced by the lease; checks the limits in the same transaction. */
  recordStep(jobId: string, token: string, step: RecordStepRequest): Promise<RecordStepResult>;
  /**
   * Suspend the running job on a wait, fenced by the lease: `running →
   * suspended`, one transaction with the wait row (and, for `event`, the
   * look-back that may resolve it at once). A `sleep` whose `wakeAt` has
   * passed stores its step and does not suspend.
   */
  suspend(jobId: string, token: string, request: SuspendRequest): Promise<SuspendResult>;
  /**
   * Resume a pending `interrupt` wait with `input` (already validated against
   * its schema): compare-and-set pending → resolved, store the step result,
   * `suspended → queued`, all in one transaction.
   */
  resumeWait(waitId: string, input: unknown, resolvedBy: string): Promise<ResumeResult>;
  getWait(waitId: string): Promise<WaitRow | null>;
  /** The job's pending wait, if it is suspended. */
  pendingWait(jobId: string): Promise<WaitRow | null>;
  listWaits(filter: WaitFilter): Promise<WaitRow[]>;
  /** Pending interrupts: how many and when the oldest was created (metrics). */
  pendingInterrupts(): Promise<{ count: number; oldestCreatedAt: number | null }>;
}

/** What `ingest` reports about waits its events resolved (for lifecycle events and wake-ups). */
export interface ResolvedWait {
  wait: WaitRow;
  event: EventRow;
  job: JobRow;
}
