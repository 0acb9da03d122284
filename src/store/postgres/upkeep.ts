/**
 * The engine's writes that no worker's lease drives: background upkeep
 * (staging due jobs, reaping and reclaiming leases, restamping, pruning:
 * maintenance.ts, reclaim.ts), the operator's actions on one job
 * (operator-actions.ts) and the backup (backup.ts). A lease that one of
 * them ends loses its start mark (engine-core.ts `reclaimed`).
 */
import type { JobRow } from '../../core/types.js';
import type { BackupSnapshot, BackupStore, PruneRequest, ReclaimedJob, ReclaimOptions, RestampRequest, RestampResult, StageResult } from '../engine.js';
import type { UpkeepPart } from '../engine-base.js';
import { Woken } from '../woken.js';
import { dumpPostgres } from './backup.js';
import { inTransaction, retryConflicts } from './connection.js';
import { reclaimed, type EngineCore, type RolePart } from './engine-core.js';
import * as maintenance from './maintenance.js';
import { cancelJob, retryJob } from './operator-actions.js';
import * as reclaim from './reclaim.js';
import { parseJobId, toJobRow } from './rows.js';

export class PostgresUpkeep implements UpkeepPart, RolePart<BackupStore> {
  readonly #core: EngineCore;

  constructor(core: EngineCore) {
    this.#core = core;
  }

  /** Moves at most 5000 jobs per call; when more are due, `nextDueAt` is <= now, so call again. */
  stageDue(): Promise<StageResult> {
    const core = this.#core;
    return maintenance.stageDue(core.query, core.clock(), (woken) => void core.wakeups.committed(woken), core.durableWrite);
  }

  /** Reclaims at most 1000 expired leases per call (oldest deadline first). */
  async reapExpired(options: ReclaimOptions): Promise<ReclaimedJob[]> {
    const core = this.#core;
    return reclaimed(core, await core.run('reaping', () => reclaim.reapExpired(core.leasePool, core.clock(), options.poisonAfter)));
  }

  async reclaimWorker(workerId: string, options: ReclaimOptions): Promise<ReclaimedJob[]> {
    const core = this.#core;
    return reclaimed(core, await core.run('reclaiming', () => reclaim.reclaimWorker(core.pool, core.clock(), options.poisonAfter, workerId)));
  }

  async reclaimAll(): Promise<ReclaimedJob[]> {
    const core = this.#core;
    return reclaimed(core, await core.run('reclaiming', () => reclaim.reclaimAll(core.pool, core.clock())));
  }

  restampJobs(request: RestampRequest): Promise<RestampResult> {
    return maintenance.restampJobs(this.#core.query, request);
  }

  prune(request: PruneRequest): Promise<{ jobs: number; events: number }> {
    const core = this.#core;
    return core.run('pruning', () => maintenance.prune(core.pool, core.clock, request));
  }

  // --- operator actions ---------------------------------------------------

  async cancel(jobId: string): Promise<JobRow | null> {
    const core = this.#core;
    const id = parseJobId(jobId);
    if (id === null) return null;
    // A lease-marked job cancelled before its start(): that start must ask the store (and be refused).
    core.markedByLease.delete(jobId);
    const now = core.clock();
    const row = await core.run('cancelling', () => retryConflicts(() => inTransaction(core.pool, (client) => cancelJob(client, id, now))));
    return row ? toJobRow(row) : null;
  }

  async retry(jobId: string): Promise<JobRow | null> {
    const core = this.#core;
    const id = parseJobId(jobId);
    if (id === null) return null;
    const now = core.clock();
    const row = await core.run('retrying', () => inTransaction(core.pool, (client) => retryJob(client, id, now)));
    if (row?.state === 'queued') void core.wakeups.committed(Woken.of([row.queue], [row.handler]));
    return row ? toJobRow(row) : null;
  }

  // --- backup -------------------------------------------------------------

  /** A `pg_dump` custom-format archive of this schema (restore with `pg_restore`). */
  backupTo(file: string): Promise<BackupSnapshot> {
    const core = this.#core;
    core.assertOpen();
    return dumpPostgres(core.pool, core.url, core.schema, file);
  }
}
