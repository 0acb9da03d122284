/**
 * The lifecycle contract: every job, handler and node transition the runtime
 * announces, as a typed event map. It sits at the bottom layer so observers
 * (`obs/` metrics and traces, the SSE stream, logs) depend on the contract,
 * not on the runtime that emits it (runtime/lifecycle.ts).
 */
import type { AttemptOutcome, DeadReason, JobRow, LeasedJob } from './types.js';
import type { StepRow, WaitRow } from './durable.js';

/**
 * Payloads of transitions a remote worker reports over HTTP carry `remote`
 * with the request id, so their log lines join the request's (`request_id`).
 */
export interface RemoteOrigin {
  remote?: { requestId: string; workerId: string };
}

export interface LifecycleEvents {
  'job:enqueued': { job: JobRow };
  'job:start': { job: LeasedJob; waitMs: number } & RemoteOrigin;
  'job:succeeded': { job: LeasedJob; durationMs: number } & RemoteOrigin;
  /** `retryAt` null: the job is dead, for `deadReason`. `killed`: its worker thread was killed under it (memory limit, crash). */
  'job:failed': {
    job: LeasedJob;
    durationMs: number;
    outcome: AttemptOutcome;
    error: Error;
    retryAt: number | null;
    deadReason: DeadReason | null;
    killed: boolean;
  } & RemoteOrigin;
  'job:released': { job: LeasedJob; reason: 'shutdown' | 'thread_lost' | 'handler_unavailable' } & RemoteOrigin;
  'job:stale': { job: LeasedJob; op: 'complete' | 'fail' | 'heartbeat' | 'release' | 'start' | 'step' | 'suspend' } & RemoteOrigin;
  /** A durable step suspended the job on `wait` (an `interrupt` wait is a new pending interrupt). */
  'job:suspended': { job: LeasedJob; wait: WaitRow; durationMs: number } & RemoteOrigin;
  /** A suspended job was queued again: its event arrived, a person resumed it (`actor`), its timeout or sleep passed. */
  'job:woken': { job: JobRow; wait: WaitRow; cause: 'event' | 'resume' | 'timeout' | 'sleep'; actor: string | null };
  /** A step finished (`succeeded`, stored), failed (threw; the attempt fails), or was `memoized` (its stored result returned). */
  'step:finished': { job: LeasedJob; step: StepRow | { name: string; kind: StepRow['kind'] }; outcome: 'succeeded' | 'failed' | 'memoized'; durationMs: number } & RemoteOrigin;
  /** A re-run asked for steps in another order than stored: the code changed under a suspended or retried job. */
  'step:sequence_changed': { job: LeasedJob; expected: string; asked: string; seq: number };
  /** An operator cancelled or retried a job (API). */
  'job:cancelled': { job: JobRow };
  'job:retried': { job: JobRow };
  /** An operator paused, resumed or reset a handler or queue; `paused` is the state after. */
  'handler:changed': { handler: string; queue: string; paused: boolean; action: 'pause' | 'resume' | 'reset' };
  'queue:changed': { queue: string; paused: boolean; action: 'pause' | 'resume' };
  /** A handler's quarantine or circuit-breaker state changed (supervision.ts). */
  'handler:supervision': { handler: string; quarantined: boolean; breaker: 'closed' | 'open' | 'half_open' };
  /** An `isolation: 'thread'` handler's thread was replaced: out of memory, died, or terminated at its hard timeout. */
  'thread:restarted': { handler: string; reason: 'memory' | 'crash' | 'timeout'; detail: string };
  /**
   * A job taken back from a holder that is gone: its lease expired (`cause`
   * `lease`, the reaper) or its node stopped heartbeating (`node`). `state` is
   * `queued`, or `dead` when poisoned. `expiredAt`: when the claim lapsed (ms),
   * the start of the recovery latency.
   */
  'lease:expired': { jobId: string; handler: string; queue: string; state: string; cause: 'lease' | 'node'; expiredAt?: number };
  /**
   * A lease call got fewer jobs than it could have because a lease cap held
   * them back (core/lease-caps.ts): `tenant` caps per queue (with the tenants
   * at their cap), or the remote `worker` id's or work `key`'s cap (queue null).
   */
  'lease:capped': { cap: 'tenant' | 'worker' | 'key'; queue: string | null; tenants: readonly string[]; workerId: string };
  'event:ingested': { eventId: string; name: string; jobs: number; created: boolean };
  /**
   * A debounce, throttle or batch trigger handled an event's job (core/trigger-control.ts):
   * `merged` when it joined a job an earlier event opened; `delayedMs` how long a throttle held it back.
   */
  'trigger:controlled': { handler: string; kind: 'debounce' | 'throttle' | 'batch'; merged: boolean; delayedMs: number };
  'intake:rejected': { queue: string; reason: 'queue_full' | 'shutting_down' };
  'task:failed': { task: string; error: Error };
  /** The retention pruner finished a run: rows deleted per table (jobs with their attempts and steps; events), how long it took, when it ended (ms). */
  'retention:pruned': { jobs: number; events: number; durationMs: number; at: number };
  /** The in-process backup schedule finished a backup; `at` is when the copy was taken (ms). Failures are `task:failed` with task `backup`. */
  'backup:succeeded': { path: string; bytes: number; durationMs: number; at: number };
}

export type LifecycleName = keyof LifecycleEvents;
export type LifecycleListener<K extends LifecycleName> = (payload: LifecycleEvents[K]) => void;

/**
 * What an observer (metrics, logs, traces, the SSE stream) is given: it may
 * listen, never emit; only `runtime/` emits (runtime/lifecycle.ts).
 *
 * @example
 * const off = lifecycle.on('job:succeeded', ({ job, durationMs }) => histogram.observe(durationMs / 1000));
 */
export interface LifecycleSubscriber {
  /** Returns the unsubscribe function. */
  on<K extends LifecycleName>(event: K, listener: LifecycleListener<K>): () => void;
}

