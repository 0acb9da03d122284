/**
 * Reclaiming leases whose holder is gone (lease expired, or the worker's
 * previous incarnation crashed): requeue the job, or poison it once it has
 * been reclaimed `poisonAfter` times, since a job that keeps killing its
 * worker would otherwise crash-loop the node forever. Only a lease whose
 * handler had started counts: one leased ahead and never run goes back
 * unspent, its attempt row marked `released`.
 */
import type { AttemptOutcome } from '../../core/types.js';
import type { ReclaimedJob, ReclaimOptions } from '../engine.js';
import { addDepth, type WriteEffects } from './queue-depth.js';
import type { FixedStatements } from './statements.js';

export function reclaimJobs(
  s: FixedStatements,
  jobs: readonly { id: number; expired_at?: number }[],
  outcome: Extract<AttemptOutcome, 'lease_expired' | 'crashed'>,
  options: ReclaimOptions,
  now: number,
  own: WriteEffects,
): ReclaimedJob[] {
  const reclaimed: ReclaimedJob[] = [];
  for (const { id, expired_at: expiredAt } of jobs) {
    const raw = s.reclaim.get({ id, poisonAfter: options.poisonAfter, now });
    if (!raw) continue;
    const started = raw.started === 1;
    s.endAttempt.run(now, started ? outcome : 'released', null, id, raw.lease_seq);
    if (raw.state === 'dead') addDepth(own, raw.queue, -1);
    else own.woken.add(raw.queue, raw.handler);
    const job: ReclaimedJob = { id: String(raw.id), handler: raw.handler, queue: raw.queue, state: raw.state, started };
    if (expiredAt !== undefined) job.expiredAt = expiredAt;
    reclaimed.push(job);
  }
  return reclaimed;
}
