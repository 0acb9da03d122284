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
    // The attempt's one row (migration 0009); the reclaim leaves worker_id and leased_at as the lease set them.
    s.insertAttempt.run(id, raw.lease_seq, raw.worker_id ?? '', raw.leased_at ?? now, now, started ? outcome : 'released', null);
    if (raw.state === 'dead') addDepth(own, raw.queue, -1);
    else own.woken.add(raw.queue, raw.handler);
    const job: ReclaimedJob = { id: String(raw.id), handler: raw.handler, queue: raw.queue, state: raw.state, started };
    if (expiredAt !== undefined) job.expiredAt = expiredAt;
    reclaimed.push(job);
  }
  return reclaimed;
}

/** Most expired leases one reap reclaims (oldest deadline first), so it never holds the write lock for long. */
const REAP_BATCH = 1000;

export function reclaimExpired(s: FixedStatements, options: ReclaimOptions, now: number, own: WriteEffects): ReclaimedJob[] {
  return reclaimJobs(s, s.expiredLeases.all(now, REAP_BATCH), 'lease_expired', options, now, own);
}

/** Every lease the worker holds: its previous incarnation crashed. */
export function reclaimWorkerLeases(s: FixedStatements, workerId: string, options: ReclaimOptions, now: () => number, own: WriteEffects): ReclaimedJob[] {
  return reclaimJobs(s, s.workerLeases.all(workerId), 'crashed', options, now(), own);
}

/** Every running job whoever holds it, never poisoned: after a restore no restored lease has a live holder. */
export function reclaimAllRunning(s: FixedStatements, now: number, own: WriteEffects): ReclaimedJob[] {
  return reclaimJobs(s, s.allRunning.all(), 'crashed', { poisonAfter: Number.MAX_SAFE_INTEGER }, now, own);
}

/** The leases still held by each stale node, their deadline taken as the node's last heartbeat plus `staleAfterMs`. */
export function reclaimStaleNodes(
  s: FixedStatements,
  stale: readonly { nodeId: string; heartbeatAt: number }[],
  request: ReclaimOptions & { staleAfterMs: number },
  now: number,
  own: WriteEffects,
): ReclaimedJob[] {
  return stale.flatMap((node) => {
    const expiredAt = node.heartbeatAt + request.staleAfterMs;
    return reclaimJobs(s, s.workerLeases.all(node.nodeId).map(({ id }) => ({ id, expired_at: expiredAt })), 'crashed', request, now, own);
  });
}
