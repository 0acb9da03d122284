/**
 * Durable steps of remote workers (docs/remote-workers.md, "Durable steps"):
 * read a job's stored steps, record a finished step, suspend the job on a
 * wait. `RemoteWorkers` owns the lease side and delegates these three here.
 *
 * Each call is fenced by the lease token like complete and fail: the read
 * checks the token on the row, the writes in the store's own transaction, so
 * a stale holder can neither learn nor record anything. The lifecycle events
 * are the ones the node's own attempts emit (`step:finished`,
 * `job:suspended`), carrying the request's origin.
 */
import { DURABLE_DEFAULTS, type DurableLimits, type StepRow, type SuspendRequest, type WaitRow } from '../core/durable.js';
import { StepPlan } from '../core/step-plan.js';
import { DroverError } from '../core/errors.js';
import type { JobRow, LeasedJob } from '../core/types.js';
import type { StorageEngine } from '../store/engine.js';
import type { RecordStepRequest } from '../store/roles/durable-store.js';
import { InterruptInputValidator } from './interrupt-input.js';
import type { Lifecycle, RemoteOrigin } from './lifecycle.js';

/** What the step calls need from `RemoteWorkers`: the attempt's bookkeeping and its error path. */
export interface RemoteAttempts {
  store: StorageEngine;
  lifecycle: Lifecycle;
  clock: () => number;
  /** A suspended job wakes at `wakeAt`: the due timer must look then. */
  onScheduled: (runAt: number) => void;
  durationOf(jobId: string, attempt: number): Promise<number>;
  /** The attempt ended (suspended): forget its start. */
  ended(jobId: string): void;
  /** Emit `job:stale` and throw the 409. */
  stale(request: StepCall, op: 'step' | 'suspend', row: JobRow | null): Promise<never>;
  origin(requestId: string, workerId: string | null): RemoteOrigin;
}

export interface StepCall {
  jobId: string;
  token: string;
  requestId: string;
  /** The key's scope and binding, checked on the row before anything is read or written; throw to refuse. */
  check?: (job: JobRow | null) => void;
}

/** A suspend's answer: the job suspended on `wait`, or an event wait found its event at once (`step` holds it) and the attempt goes on. */
export type RemoteSuspendResult = { suspended: true; wait: WaitRow } | { suspended: false; step: StepRow };

export class RemoteSteps {
  /** Compiles the schemas of remote interrupts at suspend, so a broken one is the worker's 422 now, not a failed resume later. */
  readonly #schemas = new InterruptInputValidator();

  constructor(private readonly attempts: RemoteAttempts) {}

  /** The job's stored steps, in `seq` order, for the current holder of its lease only. */
  async steps(call: StepCall): Promise<StepRow[]> {
    const row = await this.#row(call);
    if (row.state !== 'running' || row.leaseToken !== call.token) return this.attempts.stale(call, 'step', row);
    return this.attempts.store.getSteps(call.jobId);
  }

  /** Store a finished `run` step (fenced, limits checked in the store's transaction). */
  async record(call: StepCall, step: Omit<RecordStepRequest, 'limits'>, limits: DurableLimits): Promise<StepRow> {
    const row = await this.#row(call);
    const recorded = await this.attempts.store.recordStep(call.jobId, call.token, { ...step, limits });
    if (recorded.ok) {
      const durationMs = Math.max(0, recorded.step.finishedAt - recorded.step.startedAt);
      this.attempts.lifecycle.emit('step:finished', { job: asLeased(row, call.token), step: recorded.step, outcome: 'succeeded', durationMs, ...this.attempts.origin(call.requestId, row.workerId) });
      return recorded.step;
    }
    if (recorded.reason !== 'limit') {
      if (recorded.reason === 'not_found') throw notFound(call.jobId);
      if (recorded.reason === 'stale_lease') return this.attempts.stale(call, 'step', row);
      throw new DroverError('duplicate_step', `job ${call.jobId} already has a step named "${step.name}"; step names are unique within a job (in a loop, add the index: \`item:\${i}\`). Nothing was written`, {
        extensions: { jobId: call.jobId, step: step.name },
      });
    }
    // The limit's name is its error code (core/errors.ts); the store's message names the config key.
    throw new DroverError(recorded.limit, `${recorded.message}; nothing was written`, {
      extensions: { jobId: call.jobId, step: step.name },
    });
  }

  /**
   * Suspend the job on a wait: the attempt ends (outcome `suspended`, no
   * retry spent, lease and slot freed) unless an event wait's look-back
   * found its event, which is then the step's stored result.
   */
  async suspend(call: StepCall, request: SuspendRequest): Promise<RemoteSuspendResult> {
    const { store, lifecycle, clock } = this.attempts;
    if (request.kind === 'interrupt') this.#assertSchema(request);
    const row = await this.#row(call);
    // An event wait looks back from where the step before it began, as the node's own steps do
    // (StepPlan.lookBackFrom), on the node's clock: a worker's clock never decides what is missed.
    // Other waits start when the worker says, but never in the node's future.
    const startedAt =
      request.kind === 'event'
        ? new StepPlan(await store.getSteps(call.jobId), DURABLE_DEFAULTS).lookBackFrom(request.seq, row.createdAt)
        : Math.min(request.startedAt, clock());
    const started = { ...request, startedAt };
    const durationMs = await this.attempts.durationOf(row.id, row.attempts);
    const result = await store.suspend(call.jobId, call.token, started);
    if (!result.ok) {
      if (result.reason === 'not_found') throw notFound(call.jobId);
      return this.attempts.stale(call, 'suspend', row);
    }
    const origin = this.attempts.origin(call.requestId, row.workerId);
    if (!result.suspended) {
      const stepMs = Math.max(0, result.step.finishedAt - result.step.startedAt);
      lifecycle.emit('step:finished', { job: asLeased(row, call.token), step: result.step, outcome: 'succeeded', durationMs: stepMs, ...origin });
      return { suspended: false, step: result.step };
    }
    this.attempts.ended(row.id);
    if (result.wait.wakeAt !== null) this.attempts.onScheduled(result.wait.wakeAt);
    lifecycle.emit('job:suspended', { job: asLeased(result.job, call.token), wait: result.wait, durationMs, ...origin });
    return { suspended: true, wait: result.wait };
  }

  #assertSchema(request: SuspendRequest): void {
    try {
      // Any input will do: only whether the schema compiles is asked here.
      this.#schemas.check(request.schema, null, `of step "${request.step}"`);
    } catch (error) {
      if (error instanceof DroverError && error.code === 'config_invalid') {
        throw new DroverError('validation', `body.schema: not a JSON Schema a resume could be checked against (${(error.cause as Error | undefined)?.message ?? error.message})`, {
          extensions: { errors: [{ path: 'body.schema', message: 'is not a valid JSON Schema' }] },
        });
      }
    }
  }

  /** The job's row after the key's check; 404 when it is gone. */
  async #row(call: StepCall): Promise<JobRow> {
    const row = await this.attempts.store.getJob(call.jobId);
    call.check?.(row);
    if (!row) throw notFound(call.jobId);
    return row;
  }
}

export function notFound(jobId: string): DroverError {
  return new DroverError('not_found', `no job with id "${jobId}"`);
}

/** A job row as the lease the remote worker holds (the events carry a LeasedJob). */
export function asLeased(job: JobRow, token: string): LeasedJob {
  return { ...job, leaseToken: token, leaseExpiresAt: job.leaseExpiresAt ?? 0, event: null };
}
