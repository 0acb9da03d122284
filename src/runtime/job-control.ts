/**
 * Operator actions on one job: cancel an unfinished job, retry a dead or
 * cancelled one, resume a suspended one's interrupt with a person's input.
 * The rules and the lifecycle events live here; the routes
 * (`api/routes/jobs.ts`, `api/routes/interrupts.ts`) keep the schemas and
 * record the action in the audit trail with the states before and after.
 */
import type { WaitRow } from '../core/durable.js';
import { DroverError } from '../core/errors.js';
import type { JobRow } from '../core/types.js';
import type { JobReads, JobStore } from '../store/engine.js';
import type { DurableStore } from '../store/roles/durable-store.js';
import { InterruptInputValidator } from './interrupt-input.js';
import type { Lifecycle } from './lifecycle.js';

/** A job as it was before an operator action, and after it (the same row when the store changed nothing). */
export interface JobChange {
  before: JobRow;
  job: JobRow;
}

/** A resumed interrupt: its wait (now `resolved`) and its job (queued again). */
export interface InterruptResume {
  wait: WaitRow;
  job: JobRow;
}

export class JobControl {
  readonly #inputs = new InterruptInputValidator();

  constructor(private readonly options: { store: JobStore & JobReads & DurableStore; lifecycle: Lifecycle }) {}

  /**
   * Cancel a job that has not finished; a running attempt loses its lease
   * (its outcome is refused as stale).
   *
   * @example
   * const { before, job } = await jobControl.cancel(id); // before.state 'queued', job.state 'cancelled'
   */
  async cancel(id: string): Promise<JobChange> {
    const before = await this.#find(id);
    if (before.state === 'succeeded' || before.state === 'dead' || before.state === 'cancelled') {
      throw new DroverError('invalid_state', `job ${before.id} is ${before.state}; only unfinished jobs can be cancelled`, { extensions: { state: before.state } });
    }
    const job = await this.options.store.cancel(before.id);
    if (job) this.options.lifecycle.emit('job:cancelled', { job });
    return { before, job: job ?? before };
  }

  /**
   * Queue a dead or cancelled job again, with a fresh set of attempts.
   *
   * @example
   * const { job } = await jobControl.retry(id); // job.state 'queued'
   */
  async retry(id: string): Promise<JobChange> {
    const before = await this.#find(id);
    if (before.state !== 'dead' && before.state !== 'cancelled') {
      throw new DroverError('invalid_state', `job ${before.id} is ${before.state}; only dead or cancelled jobs can be retried`, { extensions: { state: before.state } });
    }
    const job = await this.options.store.retry(before.id);
    if (job) this.options.lifecycle.emit('job:retried', { job });
    return { before, job: job ?? before };
  }

  /**
   * Resume a pending interrupt with `input`, which must satisfy the step's
   * JSON Schema (422 otherwise). The store's compare-and-set (pending →
   * resolved, suspended → queued, one transaction) makes a second resume, or
   * one that races the timeout or a cancel, a 409 `interrupt-not-pending`:
   * the step never gets two answers. The store's commit wakes the
   * dispatchers (this node's at once, the others' through their wake-ups),
   * as a retry does. `actor` (an API key id, `cli:<user>@<host>`) is
   * recorded as who resolved it. The input becomes the step's stored result,
   * so `maxInputBytes` (the node's `durable.maxStepResultBytes`) bounds it
   * like any step result: past it, 422 and nothing changes.
   *
   * @example
   * const { job } = await jobControl.resumeInterrupt('wt_…', { approve: true }, 'key_abc'); // job.state 'queued'
   */
  async resumeInterrupt(id: string, input: unknown, actor: string, options: { maxInputBytes?: number } = {}): Promise<InterruptResume> {
    const { store, lifecycle } = this.options;
    const found = await store.getWait(id);
    if (!found || found.kind !== 'interrupt') throw new DroverError('not_found', `no interrupt with id "${id}"; list them with GET /v1/interrupts`);
    // A conflict says more than a schema complaint about an interrupt that is settled anyway.
    if (found.state !== 'pending') throw notPending(found);
    this.#inputs.check(found.schema, input, found.id);
    const bytes = Buffer.byteLength(JSON.stringify(input) ?? 'null');
    if (options.maxInputBytes !== undefined && bytes > options.maxInputBytes) {
      throw new DroverError('validation', `input: ${bytes} bytes of JSON, past the node's durable.maxStepResultBytes (${options.maxInputBytes}); send a smaller answer (a reference to larger data)`, {
        extensions: { errors: [{ path: 'input', message: `larger than ${options.maxInputBytes} bytes` }], interrupt: found.id },
      });
    }
    const result = await store.resumeWait(found.id, input, actor);
    if (!result.ok) {
      if (result.reason === 'conflict') throw notPending(result.wait);
      throw new DroverError('not_found', `no interrupt with id "${id}" (its job may have been pruned)`);
    }
    lifecycle.emit('job:woken', { job: result.job, wait: result.wait, cause: 'resume', actor });
    return { wait: result.wait, job: result.job };
  }

  async #find(id: string): Promise<JobRow> {
    const job = await this.options.store.getJob(id);
    if (!job) throw new DroverError('not_found', `no job with id "${id}"`);
    return job;
  }
}

/** An interrupt's state as the API names it: a resolved interrupt was `resumed`. */
export function interruptState(state: WaitRow['state']): 'pending' | 'resumed' | 'timed_out' | 'cancelled' {
  return state === 'resolved' ? 'resumed' : state;
}

function notPending(wait: WaitRow): DroverError {
  const state = interruptState(wait.state);
  const why = state === 'resumed' ? `was already resumed${wait.resolvedBy ? ` by ${wait.resolvedBy}` : ''}` : state === 'timed_out' ? 'timed out' : 'was cancelled with its job';
  return new DroverError('interrupt_not_pending', `interrupt ${wait.id} ${why}; nothing was changed`, {
    extensions: { interrupt: wait.id, jobId: wait.jobId, state, resolvedAt: wait.resolvedAt === null ? null : new Date(wait.resolvedAt).toISOString() },
  });
}
