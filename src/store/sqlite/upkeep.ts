/**
 * The engine's writes that no worker's lease drives, one group-commit write op
 * each: background upkeep (staging due jobs, reaping and reclaiming leases,
 * restamping, pruning: maintenance.ts, reclaim.ts) and the operator's actions
 * on one job (operator-actions.ts). A lease that one of them ends is
 * forgotten by the engine's lease memo (lease-memo.ts).
 */
import type { JobRow } from '../../core/types.js';
import type { PruneRequest, ReclaimedJob, ReclaimOptions, RestampRequest, RestampResult, StageResult } from '../engine.js';
import type { UpkeepPart } from '../engine-base.js';
import { durableContext, forgetLeases, type EngineCore } from './engine-core.js';
import { pruneStore, restampJobs, stageDueJobs } from './maintenance.js';
import { cancelJob, retryJob } from './operator-actions.js';
import { reclaimAllRunning, reclaimExpired, reclaimWorkerLeases } from './reclaim.js';

export class SqliteUpkeep implements UpkeepPart {
  readonly #core: EngineCore;

  constructor(core: EngineCore) {
    this.#core = core;
  }

  /** Moves at most 5000 jobs per call; when more are due, `nextDueAt` is <= now, so call again. */
  stageDue(): Promise<StageResult> {
    return this.#core.write((own) => stageDueJobs(durableContext(this.#core, own)));
  }

  /** Reclaims at most 1000 expired leases per call (oldest deadline first). */
  async reapExpired(options: ReclaimOptions): Promise<ReclaimedJob[]> {
    const core = this.#core;
    // The reaper asks every second and almost always finds nothing: an index
    // probe first, so an idle reap costs no write batch (no group-commit slot).
    core.assertOpen();
    if (!core.prepared.s.fixed.anyExpiredLease.get(core.clock())) return [];
    return core.write((own) => forgetLeases(core.memo, reclaimExpired(core.prepared.s.fixed, options, core.clock(), own)));
  }

  reclaimWorker(workerId: string, options: ReclaimOptions): Promise<ReclaimedJob[]> {
    const core = this.#core;
    return core.write((own) => forgetLeases(core.memo, reclaimWorkerLeases(core.prepared.s.fixed, workerId, options, core.clock, own)));
  }

  reclaimAll(): Promise<ReclaimedJob[]> {
    const core = this.#core;
    return core.write((own) => forgetLeases(core.memo, reclaimAllRunning(core.prepared.s.fixed, core.clock(), own)));
  }

  restampJobs(request: RestampRequest): Promise<RestampResult> {
    return this.#core.write(() => restampJobs(this.#core.prepared.s.fixed, request));
  }

  prune(request: PruneRequest): Promise<{ jobs: number; events: number }> {
    const core = this.#core;
    return core.write(() => pruneStore(core.prepared.s.fixed, core.prepared.t, request, core.clock));
  }

  // --- operator actions ---------------------------------------------------

  cancel(jobId: string): Promise<JobRow | null> {
    const core = this.#core;
    return core.write((own) => {
      core.memo.forget(jobId);
      return cancelJob(core.prepared.s.fixed, core.prepared.d.fixed, jobId, core.clock, own);
    });
  }

  retry(jobId: string): Promise<JobRow | null> {
    return this.#core.write((own) => retryJob(this.#core.prepared.s.fixed, jobId, this.#core.clock, own));
  }
}
