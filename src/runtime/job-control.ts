/**
 * Operator actions on one job: cancel an unfinished job, retry a dead or
 * cancelled one. The rules and the lifecycle events live here; the routes
 * (`api/routes/jobs.ts`) keep the schemas and record the action in the audit
 * trail with the states before and after.
 */
import { DroverError } from '../core/errors.js';
import type { JobRow } from '../core/types.js';
import type { JobReads, JobStore } from '../store/engine.js';
import type { Lifecycle } from './lifecycle.js';

/** A job as it was before an operator action, and after it (the same row when the store changed nothing). */
export interface JobChange {
  before: JobRow;
  job: JobRow;
}

export class JobControl {
  constructor(private readonly options: { store: JobStore & JobReads; lifecycle: Lifecycle }) {}

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

  async #find(id: string): Promise<JobRow> {
    const job = await this.options.store.getJob(id);
    if (!job) throw new DroverError('not_found', `no job with id "${id}"`);
    return job;
  }
}
