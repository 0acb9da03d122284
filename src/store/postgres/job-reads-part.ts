/**
 * The engine's `JobReads` role: one job, its attempts, a filtered page of
 * jobs, an event and the jobs it merged into, per-queue counts, and the
 * payload indexes behind payload filters. The SQL is job-reads.ts's (and
 * trigger-groups.ts's for merges), run on the general pool.
 */
import type { AttemptRow, EventRow, JobRow } from '../../core/types.js';
import type { EventMerge, JobFilter, JobReads, QueueStats } from '../engine.js';
import type { EngineCore, RolePart } from './engine-core.js';
import * as reads from './job-reads.js';
import * as q from './queries.js';
import { eventMerges } from './trigger-groups.js';

export class PostgresJobReads implements RolePart<JobReads> {
  readonly #core: EngineCore;

  constructor(core: EngineCore) {
    this.#core = core;
  }

  getJob(id: string): Promise<JobRow | null> {
    return reads.getJob(this.#core.query, id);
  }

  getAttempts(jobId: string): Promise<AttemptRow[]> {
    return reads.getAttempts(this.#core.query, jobId);
  }

  listJobs(filter: JobFilter): Promise<JobRow[]> {
    return reads.listJobs(this.#core.query, filter);
  }

  getEvent(id: string): Promise<EventRow | null> {
    return reads.getEvent(this.#core.query, id);
  }

  eventMerges(eventId: string): Promise<EventMerge[]> {
    return this.#core.run('query', () => eventMerges(this.#core.pool, eventId));
  }

  ensurePayloadIndexes(paths: ReadonlyArray<readonly string[]>): Promise<string[]> {
    return reads.ensurePayloadIndexes(this.#core.pool, paths);
  }

  queueStats(): Promise<QueueStats[]> {
    return reads.queueStats(this.#core.query);
  }

  async handlersWithQueuedJobs(handlers: readonly string[]): Promise<string[]> {
    if (handlers.length === 0) return [];
    const rows = await this.#core.query<{ handler: string }>(q.HANDLERS_WITH_QUEUED_JOBS, [handlers]);
    return rows.map((row) => row.handler);
  }
}
