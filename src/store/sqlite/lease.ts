/**
 * The lease hot path: pick due jobs in priority order for the handlers a
 * worker has room for, honouring per-handler room, the total limit and
 * concurrency keys, and mark each one running under a fresh lease token.
 *
 * Runs inside one group-commit write op (so a whole lease is atomic and two
 * lease calls can never take the same job: the second sees the first's rows as
 * `running`). Taken jobs are updated immediately, which makes the concurrency
 * count for later candidates in the same call include them.
 *
 * Lease caps (core/lease-caps.ts) are counted here too, in the same write:
 * the worker id's and the key's running jobs shrink the call's limit before
 * the walk; a tenant at its cap has its candidates passed over like those of
 * a full concurrency key.
 */
import { randomUUID } from 'node:crypto';
import { noteTenantRefusal, roomUnderWorkerCaps, TenantTally } from '../../core/lease-caps.js';
import type { EventRow, LeasedJob } from '../../core/types.js';
import type { LeaseRequest } from '../engine.js';
import { leasedJob, storedNumber, storedText } from './rows.js';
import type { SqliteStatements } from './statements.js';

/** Extra candidates fetched beyond what is needed, to absorb per-handler and concurrency skips cheaply. */
const SLACK = 16;
/** Stop looking past this many concurrency-blocked candidates: leasing must stay a short write. */
const MAX_BLOCKED = 5000;

export function leaseJobs(
  statements: SqliteStatements,
  request: LeaseRequest,
  now: number,
  loadEvent: (id: string) => EventRow | null,
): LeasedJob[] {
  const s = statements.fixed;
  const room = new Map<string, number>();
  const expiresByHandler = new Map<string, number>();
  for (const { name, max, leaseMs } of request.handlers) {
    const n = Math.floor(max);
    if (n > 0) room.set(name, Math.max(room.get(name) ?? 0, n));
    if (leaseMs !== undefined) expiresByHandler.set(name, Math.max(expiresByHandler.get(name) ?? 0, now + leaseMs));
  }
  let want = Math.floor(request.limit);
  const caps = request.caps;
  if (caps && (caps.worker !== undefined || caps.key !== undefined)) {
    const worker = caps.worker === undefined ? 0 : s.runningOfWorker.get(request.workerId)!.n;
    const key = caps.key === undefined || !request.keyId ? 0 : s.runningOfLeaseKey.get(request.keyId)!.n;
    want = roomUnderWorkerCaps(want, request.keyId ? caps : { ...caps, key: undefined }, { worker, key }, request.capped);
  }
  const tenants = caps?.tenants ? new TenantTally(caps.tenants) : null;
  /** Tenants at their cluster-wide cap: left out of later rounds' scans (a capped tenant's backlog would fill every round). */
  const fullTenants = new Set<string>();
  const exclude = request.excludeQueues ?? [];
  const defaultExpires = now + request.leaseMs;
  const runningByKey = new Map<string, number>();
  const blocked = new Set<number>();
  const events = new Map<string, EventRow | null>();
  const leased: LeasedJob[] = [];
  const keyId = request.keyId ?? null;
  const storedWorkerId = storedText(request.workerId, s.echo);
  const storedKeyId = storedText(keyId, s.echo);
  const storedNow = storedNumber(now);

  while (want > 0 && room.size > 0 && blocked.size <= MAX_BLOCKED) {
    // Jobs taken in earlier rounds are now `running` and drop out of the scan;
    // blocked ones do not, so fetch enough to see past them.
    const fetch = want + blocked.size + SLACK;
    const candidates = statements.leaseCandidates([...room.keys()], exclude, fetch, [...fullTenants]);
    for (const job of candidates) {
      if (want === 0) break;
      if (blocked.has(job.id)) continue;
      const left = room.get(job.handler);
      if (left === undefined) continue; // this handler's room ran out earlier in the round

      const capped = tenants !== null && job.tenant !== null ? job.tenant : null;
      if (capped !== null) {
        if (!tenants!.has(capped)) tenants!.load(capped, s.runningOfTenant.all(capped).map((r) => [r.queue, r.n] as const));
        if (!tenants!.fits(capped, job.queue)) {
          noteTenantRefusal(request.capped, capped, job.queue);
          if (tenants!.full(capped)) fullTenants.add(capped);
          blocked.add(job.id);
          continue;
        }
      }
      if (job.concurrency_key !== null) {
        const key = job.concurrency_key;
        const running = runningByKey.get(key) ?? s.runningWithKey.get(key)?.n ?? 0;
        // A key without a limit means one at a time: the point of a key is serialising.
        if (running >= (job.concurrency_limit ?? 1)) {
          runningByKey.set(key, running);
          blocked.add(job.id);
          continue;
        }
        runningByKey.set(key, running + 1);
      }

      const token = randomUUID();
      const expires = expiresByHandler.get(job.handler) ?? defaultExpires;
      // No RETURNING, no `SELECT *` (statements.ts): only the columns neither the candidate nor the update gives are read.
      if (s.leaseJob.run(token, expires, request.workerId, keyId, now, job.id).changes === 0) continue;
      if (capped !== null) tenants!.take(capped, job.queue);
      const rest = s.leasedRow.get(job.id)!;
      s.insertAttempt.run(job.id, rest.lease_seq, request.workerId, now);
      let event: EventRow | null = null;
      if (rest.event_id !== null) {
        if (!events.has(rest.event_id)) events.set(rest.event_id, loadEvent(rest.event_id));
        event = events.get(rest.event_id) ?? null;
      }
      leased.push(leasedJob(job, rest, { token, expires, workerId: storedWorkerId, keyId: storedKeyId, now: storedNow }, event));
      want--;
      if (left <= 1) room.delete(job.handler);
      else room.set(job.handler, left - 1);
    }
    if (candidates.length < fetch) break; // saw every queued job for these handlers
  }
  return leased;
}
