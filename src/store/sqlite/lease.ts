/**
 * The lease hot path: pick due jobs in priority order for the handlers a
 * worker has room for, honouring per-handler room, the total limit and
 * concurrency keys, and mark each one running under a fresh lease token. The
 * running attempt is the job row (migration 0009): no attempt row is written
 * here, its end writes it once (fenced.ts, reclaim.ts, ...).
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
import { noteTenantRefusal, roomUnderWorkerCaps, TenantTally } from '../../core/lease-caps.js';
import { randomUuid } from '../../core/uuid.js';
import type { EventRow, LeasedJob } from '../../core/types.js';
import type { LeaseRequest } from '../engine.js';
import type { HeldLease } from './lease-memo.js';
import { leasedJob, storedNumber, storedText } from './rows.js';
import type { LeaseCandidate, LeasedColumns } from './lease-scan.js';
import type { SqliteStatements } from './statements.js';

/** Extra candidates fetched beyond what is needed, to absorb per-handler and concurrency skips cheaply. */
const SLACK = 16;
/** Stop looking past this many concurrency-blocked candidates: leasing must stay a short write. */
const MAX_BLOCKED = 5000;

/**
 * `held` gets each leased job's lease for the engine's memo (lease-memo.ts).
 * The first `start` jobs taken for a handler (`LeaseRequest.start`, in the
 * order returned, as the caller counts them) are marked started by the lease
 * update itself, as PostgreSQL's lease does: their handlers run the moment the
 * lease returns, and a separate mark would be one more transaction. A node
 * dying between this lease's commit and those handlers' start counts them as
 * crashed, the window PostgreSQL accepts too.
 */
export function leaseJobs(
  statements: SqliteStatements,
  request: LeaseRequest,
  now: number,
  loadEvent: (id: string) => EventRow | null,
  held: HeldLease[],
): LeasedJob[] {
  const s = statements.fixed;
  const room = new Map<string, number>();
  const expiresByHandler = new Map<string, number>();
  const marks = new Map<string, number>();
  for (const { name, max, leaseMs, start } of request.handlers) {
    const n = Math.floor(max);
    if (n > 0) room.set(name, Math.max(room.get(name) ?? 0, n));
    if (leaseMs !== undefined) expiresByHandler.set(name, Math.max(expiresByHandler.get(name) ?? 0, now + leaseMs));
    // A name given twice: the smaller count (never mark a job the caller might not start).
    const m = Math.max(0, Math.floor(start ?? 0));
    marks.set(name, marks.has(name) ? Math.min(marks.get(name)!, m) : m);
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
  let round = 0;

  while (want > 0 && room.size > 0 && blocked.size <= MAX_BLOCKED) {
    // Jobs taken in earlier rounds are now `running` and drop out of the scan;
    // blocked ones do not, so fetch enough to see past them.
    const fetch = want + blocked.size + SLACK;
    // The first round of a one-handler lease reads the leased jobs' columns in the scan: it takes most of
    // what it reads. Later rounds scan past blocked candidates, and several handlers' scans are merged and
    // cut: reading those payloads would be waste, so their jobs are read by id once taken.
    const withColumns = round++ === 0 && room.size === 1;
    const candidates = statements.lease.candidates([...room.keys()], exclude, fetch, [...fullTenants], withColumns);
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

      const token = randomUuid();
      const expires = expiresByHandler.get(job.handler) ?? defaultExpires;
      const toMark = marks.get(job.handler) ?? 0;
      const update = toMark > 0 ? s.leaseJobStarted : s.leaseJob;
      // No RETURNING, no `SELECT *` (statements.ts): only the columns neither the candidate nor the update gives are read.
      if (update.run(token, expires, request.workerId, keyId, now, now, job.id).changes === 0) continue;
      if (toMark > 0) marks.set(job.handler, toMark - 1);
      if (capped !== null) tenants!.take(capped, job.queue);
      // Read in the scan, before the update (which adds one to both counts), or by id after it.
      const before = job.payload !== undefined;
      const rest = before ? (job as LeaseCandidate & LeasedColumns) : statements.lease.leased(job.id);
      const bump = before ? 1 : 0;
      const seq = rest.lease_seq + bump;
      let event: EventRow | null = null;
      if (rest.event_id !== null) {
        if (!events.has(rest.event_id)) events.set(rest.event_id, loadEvent(rest.event_id));
        event = events.get(rest.event_id) ?? null;
      }
      const got = leasedJob(job, rest, bump, { token, expires, workerId: storedWorkerId, keyId: storedKeyId, now: storedNow }, event);
      leased.push(got);
      held.push({ id: got.id, token, queue: job.queue, seq, workerId: request.workerId, leasedAt: now, marked: toMark > 0 });
      want--;
      if (left <= 1) room.delete(job.handler);
      else room.set(job.handler, left - 1);
    }
    if (candidates.length < fetch) break; // saw every queued job for these handlers
  }
  return leased;
}
