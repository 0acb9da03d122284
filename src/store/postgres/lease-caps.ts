/**
 * Lease caps on PostgreSQL (core/lease-caps.ts; lease.ts says when they
 * apply): the worker id's and key's caps, taken under blocking advisory locks
 * before the lease, and the tenants' running counts, loaded once the
 * candidate statement holds their locks. Every count is a statement of its
 * own after the lock: in READ COMMITTED a statement's snapshot starts with
 * it, so it sees every lease the lock's previous holder committed.
 */
import type pg from 'pg';
import { roomUnderWorkerCaps, type LeaseCapReport, type LeaseCaps, type TenantTally } from '../../core/lease-caps.js';
import type { Candidate, LeaseCall, LeasePlan } from './lease.js';

const RUNNING_PER_TENANT = `
  SELECT tenant, queue, count(*)::int AS n FROM jobs
  WHERE state = 'running' AND tenant = ANY($1::text[])
  GROUP BY tenant, queue`;

/**
 * $1 worker id or null, $2 key id or null. Waits for each lock: a second
 * lease call of the same worker (or key) must count the first one's leases,
 * and the wait is one short lease transaction. Worker before key, always, so
 * two calls never wait on each other crosswise.
 */
const LOCK_HOLDERS = `
  SELECT pg_advisory_xact_lock(hashtextextended('drover:worker:' || $1::text, 0)) FROM (SELECT 1) AS one WHERE $1::text IS NOT NULL
  UNION ALL
  SELECT pg_advisory_xact_lock(hashtextextended('drover:lease-key:' || $2::text, 0)) FROM (SELECT 1) AS one WHERE $2::text IS NOT NULL`;

/**
 * $1 worker id or null, $2 key id or null: what each holds running now (a
 * statement after the locks, so it sees their last holder's leases). The
 * worker's count reads the running set through `jobs_running_lease`: an index
 * by worker cost every lease an entry (migration 0010), and the running set is
 * bounded by the cluster's concurrency, never by the backlog.
 */
export const RUNNING_OF_HOLDERS = `
  SELECT
    (SELECT count(*)::int FROM jobs WHERE state = 'running' AND $1::text IS NOT NULL AND worker_id = $1::text) AS worker,
    (SELECT count(*)::int FROM jobs WHERE state = 'running' AND $2::text IS NOT NULL AND lease_key_id = $2::text) AS key`;

/**
 * Worker and key caps, inside the caller's transaction: lock the worker id
 * and the key, count what each holds running, and shrink the plan's limit to
 * what is left. Returns the plan to lease with, or null when nothing is left.
 */
export async function lockHolders(client: pg.PoolClient, plan: LeasePlan, call: LeaseCall, caps: LeaseCaps, report?: LeaseCapReport): Promise<LeasePlan | null> {
  const worker = caps.worker === undefined ? null : call.worker;
  const key = caps.key === undefined ? null : call.keyId;
  if (worker === null && key === null) return plan;
  await client.query(LOCK_HOLDERS, [worker, key]);
  const { rows } = await client.query<{ worker: number; key: number }>(RUNNING_OF_HOLDERS, [worker, key]);
  const limit = roomUnderWorkerCaps(plan.limit, key === null ? { ...caps, key: undefined } : caps, rows[0]!, report);
  if (limit <= 0) return null;
  return limit === plan.limit ? plan : { ...plan, limit, room: plan.room.map((n) => Math.min(n, limit)) };
}

/**
 * Load the running counts of the tenants first seen in this round, whose
 * locks the candidate statement took; a tenant whose lock another node holds
 * goes to `elsewhere`: passed over for this call, but not at a cap. The count is a new statement after the lock, so it
 * sees the last holder's leases.
 */
export async function guardTenants(client: pg.PoolClient, candidates: readonly Candidate[], tenants: TenantTally, fullTenants: ReadonlySet<string>, elsewhere: Set<string>): Promise<void> {
  const mine = new Set<string>();
  for (const c of candidates) {
    if (c.tenant === null || tenants.has(c.tenant) || fullTenants.has(c.tenant) || elsewhere.has(c.tenant)) continue;
    if (c.tenant_locked) mine.add(c.tenant);
    else elsewhere.add(c.tenant);
  }
  if (mine.size === 0) return;
  const { rows } = await client.query<{ tenant: string; queue: string; n: number }>(RUNNING_PER_TENANT, [[...mine]]);
  for (const tenant of mine) tenants.load(tenant, rows.filter((r) => r.tenant === tenant).map((r) => [r.queue, r.n] as const));
}
