/**
 * The lease hot path. Two shapes, chosen by whether jobs with a concurrency
 * key are waiting for the requested handlers:
 *
 * 1. No keyed jobs waiting (the usual case): ONE statement, one round trip.
 *    Per handler, a LATERAL index scan takes up to its room in lease order
 *    with `FOR UPDATE SKIP LOCKED` (nodes leasing at the same moment take
 *    disjoint rows instead of waiting on each other); the best `limit` of
 *    those are marked running, and their events joined in. The statement
 *    also reports whether keyed jobs are waiting; if so it leases nothing and
 *    the caller takes the second shape.
 *
 * 2. Keyed jobs waiting: a transaction that walks candidates in lease order
 *    like the SQLite engine, counting running jobs per key. The count must not
 *    race another node leasing the same key: two transactions could each count
 *    "one running, limit two" and both take one. Each key is therefore guarded
 *    by `pg_try_advisory_xact_lock(hash(key))`, and the count is read in a
 *    statement that starts after the lock is held, so its snapshot includes
 *    every lease committed by the previous holder (a transaction's locks are
 *    released only after its commit is visible). A key whose lock another
 *    node holds right now is skipped for this call, not waited for: waiting
 *    could stall behind a node frozen mid-transaction, and the holder is
 *    leasing that key's jobs anyway. Why not a per-key counter row updated
 *    FOR UPDATE? Every completion of a keyed job would have to decrement it,
 *    adding a write (and a hot row) to the completion path, and a missed
 *    decrement would block a key for good; a count of running jobs cannot
 *    drift.
 *
 * Lease caps (core/lease-caps.ts) take shape 2 as well, whenever a tenant
 * cap can bind the asked handlers: a tenant is guarded like a key, by
 * `pg_try_advisory_xact_lock(hash('drover:tenant:' || tenant))`, and its
 * running jobs (per queue) are counted after the lock; a tenant another node
 * is leasing right now is skipped for this call. Worker and key caps are
 * taken before either shape, in the same transaction: `lockHolders` waits
 * for (not tries) a lock per worker id and per key, since a second call of
 * the same worker must see the first one's leases, then counts what each
 * holds and shrinks the call's limit. Without caps the fast shape runs alone,
 * outside any transaction, as before.
 *
 * Every lease token is independently random (`gen_random_uuid()`, from the
 * server's strong random source, drawn per row because the fast shape learns
 * which rows it takes only as it updates them): holding one token tells
 * nothing about another. Tokens used to share a per-call nonce, which let one
 * token derive the others. The call's id is kept apart, in `lease_call`, so a
 * call whose outcome is unknown (the connection broke around COMMIT) can be
 * undone: see `RELEASE_BY_CALL` (running rows only: once a job leaves
 * `running` a settle writes its own mark there, settle-batch.ts). `lease_key_id` records the API key that
 * leased over HTTP (null for the node's own leases).
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { noteTenantRefusal, TenantTally, type LeaseCapReport, type TenantCaps } from '../../core/lease-caps.js';
import { guardTenants, lockHolders } from './lease-caps.js';
import { compareLeaseOrder } from '../../core/queue-policy.js';
import type { LeaseRequest } from '../engine.js';
import type { LeasedJob } from '../../core/types.js';
import { AT, fastAnswerColumns, isLeased, leasedJobOf, startedNow } from './leased-rows.js';
import { toLeasedJob, type RawLeased } from './rows.js';

/** Extra candidates per handler beyond its room, to see past a few concurrency-blocked ones per round. */
const SLACK = 16;
/** Keyed leasing stops after this many rounds; what it could not reach waits for the next wake. */
const MAX_ROUNDS = 8;

const EVENT_COLUMNS = 'e.name AS e_name, e.data AS e_data, e.tenant AS e_tenant, e.received_at AS e_received_at';

/**
 * The job columns a lease returns: what a leased job carries that the call
 * does not know already. Its state, worker, leasing key and update time are
 * the call's own (`toLeasedJob` fills them in), and `lease_call` and
 * `started_seq` are the store's bookkeeping: every column returned is parsed
 * for every job leased.
 */
const LEASED_COLUMNS = `j.id, j.handler, j.queue, j.payload, j.event_id, j.priority, j.run_at, j.attempts, j.max_attempts, j.crashes, j.lease_seq,
      j.idempotency_key, j.concurrency_key, j.concurrency_limit, j.lease_token, j.lease_expires_at, j.last_error, j.dead_reason,
      j.result, j.traceparent, j.tenant, j.priority_ms, j.fair_tag, j.created_at, j.finished_at`;

/**
 * $1 handlers, $2 room per handler, $3 limit, $4 call id, $5 lease expiry
 * per handler (each job's lease follows its own handler's timeout),
 * $6 worker, $7 now, $8 leasing key id, $9 jobs per handler started at once
 * (their start marks are written here: `started_seq = lease_seq`, saving the
 * mark's round trip before they run), and with `excluding` $10 excluded
 * (paused) queues.
 *
 * Written so that PostgreSQL's generic plan for it is the index plan, and the
 * plan cache stops re-planning it: planning this statement costs several times
 * what executing it does. The paused-queue filter is left out when nothing is
 * paused (a separate statement) because \`queue <> ALL($n)\` on an unknown
 * array makes the generic plan fall back to a sequential scan.
 */
export function leaseFastSql(excluding: boolean): string {
  const notPaused = excluding ? 'AND queue <> ALL($10::text[])' : '';
  // ARRAY(...) and LATERAL pin the plan shape: ids come from an InitPlan and
  // are updated through the primary key; events are fetched by key per row.
  // A join would let the generic plan hash-join against a full table scan.
  return `
  WITH keyed AS (
    SELECT EXISTS (
      SELECT 1 FROM jobs
      WHERE state = 'queued' AND concurrency_key IS NOT NULL AND handler = ANY($1::text[]) ${notPaused}
    ) AS waiting
  ), picked AS MATERIALIZED (
    -- Each handler's candidates numbered in lease order (a window function
    -- cannot sit beside FOR UPDATE, hence the nesting): the first \`start\`
    -- of them are the jobs the caller starts at once.
    SELECT c.id, c.n <= h.start AS start_now
    FROM unnest($1::text[], $2::int[], $9::int[]) AS h(name, room, start)
    CROSS JOIN LATERAL (
      SELECT l.id, l.fair_tag, l.rank, row_number() OVER () AS n FROM (
        SELECT id, fair_tag, run_at - priority * priority_ms AS rank FROM jobs
        WHERE state = 'queued' AND handler = h.name AND concurrency_key IS NULL ${notPaused}
        ORDER BY fair_tag, run_at - priority * priority_ms, id
        LIMIT h.room
        FOR UPDATE SKIP LOCKED
      ) AS l
    ) AS c
    WHERE NOT (SELECT waiting FROM keyed)
    ORDER BY c.fair_tag, c.rank, c.id
    LIMIT $3
  ), leased AS (
    UPDATE jobs j SET state = 'running', attempts = j.attempts + 1, lease_seq = j.lease_seq + 1,
      started_seq = CASE WHEN j.id = ANY(ARRAY(SELECT id FROM picked WHERE start_now)) THEN j.lease_seq + 1 ELSE j.started_seq END,
      lease_token = gen_random_uuid()::text, lease_call = $4, lease_key_id = $8::text,
      lease_expires_at = ($5::bigint[])[array_position($1::text[], j.handler)],
      worker_id = $6, leased_at = $7, updated_at = $7
    WHERE j.id = ANY(ARRAY(SELECT id FROM picked))
    RETURNING ${LEASED_COLUMNS}, j.started_seq = j.lease_seq AS started_now
  )
  SELECT ${fastAnswerColumns()}
  FROM (SELECT 1) AS one
  LEFT JOIN (leased l LEFT JOIN LATERAL (SELECT * FROM events WHERE events.id = l.event_id) AS e ON true) ON true
  ORDER BY l.fair_tag, l.run_at - l.priority * l.priority_ms, l.id`;
}

const LEASE_FAST = leaseFastSql(false);
const LEASE_FAST_EXCLUDING = leaseFastSql(true);

/**
 * $1 handlers, $2 room, $3 excluded queues, $4 keys known to be full, $5
 * tenants known to be full (at their cluster-wide cap, or locked by another
 * node), $6/$7 (queue, tenant) pairs at a per-queue cap, $8 tenant caps on
 * (lock each candidate's tenant: `guardTenants`). Candidates of every
 * kind, in lease order per handler. Full tenants are left out of the scan,
 * not passed over after it: otherwise a capped tenant's backlog would fill
 * every round and hide the other tenants' jobs behind it.
 */
const KEYED_CANDIDATES = `
  SELECT c.id, c.handler, c.queue, c.tenant, c.concurrency_key, c.concurrency_limit,
    -- With tenant caps ($8), each candidate's tenant is try-locked here, saving
    -- a round trip; re-taking a lock this transaction holds is free.
    CASE WHEN $8::boolean AND c.tenant IS NOT NULL THEN pg_try_advisory_xact_lock(hashtextextended('drover:tenant:' || c.tenant, 0)) END AS tenant_locked
  FROM unnest($1::text[], $2::int[]) AS h(name, room)
  CROSS JOIN LATERAL (
    SELECT id, handler, queue, tenant, fair_tag, run_at - priority * priority_ms AS rank, concurrency_key, concurrency_limit FROM jobs
    WHERE state = 'queued' AND handler = h.name AND queue <> ALL($3::text[])
      AND (concurrency_key IS NULL OR concurrency_key <> ALL($4::text[]))
      AND (tenant IS NULL OR (tenant <> ALL($5::text[]) AND (queue, tenant) NOT IN (SELECT q, t FROM unnest($6::text[], $7::text[]) AS f(q, t))))
    ORDER BY fair_tag, run_at - priority * priority_ms, id
    LIMIT h.room
    FOR UPDATE SKIP LOCKED
  ) AS c
  ORDER BY c.fair_tag, c.rank, c.id`;

const TRY_KEY_LOCKS = `
  SELECT k AS key, pg_try_advisory_xact_lock(hashtextextended('drover:key:' || k, 0)) AS locked
  FROM unnest($1::text[]) AS k`;

const RUNNING_PER_KEY = `
  SELECT concurrency_key AS key, count(*) AS n FROM jobs
  WHERE state = 'running' AND concurrency_key = ANY($1::text[])
  GROUP BY concurrency_key`;

/** $1 ids, $2 call id, $3 lease expiry per handler of $6, $4 worker, $5 now, $6 handlers, $7 leasing key id. */
const LEASE_IDS = `
  WITH leased AS (
    UPDATE jobs j SET state = 'running', attempts = j.attempts + 1, lease_seq = j.lease_seq + 1,
      lease_token = gen_random_uuid()::text, lease_call = $2, lease_key_id = $7::text,
      lease_expires_at = ($3::bigint[])[array_position($6::text[], j.handler)],
      worker_id = $4, leased_at = $5, updated_at = $5
    WHERE j.id = ANY($1::bigint[]) AND j.state = 'queued'
    RETURNING ${LEASED_COLUMNS}
  )
  SELECT l.*, ${EVENT_COLUMNS} FROM leased l LEFT JOIN LATERAL (SELECT * FROM events WHERE events.id = l.event_id) AS e ON true`;

/**
 * Undo leases whose commit we could not confirm: put them back as queued
 * without spending the attempt, as `release` does. $1 worker, $2 call ids,
 * $3 now. Finds them in the running set (`jobs_running_lease`; there is no
 * index by worker since migration 0010).
 */
export const RELEASE_BY_CALL = `
  WITH undone AS (
    UPDATE jobs SET state = 'queued', attempts = greatest(attempts - 1, 0), updated_at = $3,
      lease_token = NULL, lease_expires_at = NULL
    WHERE state = 'running' AND worker_id = $1 AND lease_call = ANY($2::text[])
    RETURNING id, lease_seq, worker_id, leased_at, queue
  ), attempt AS (
    INSERT INTO attempts (job_id, attempt, worker_id, started_at, ended_at, outcome)
    SELECT id, lease_seq, worker_id, coalesce(leased_at, $3), $3, 'released' FROM undone
  )
  SELECT DISTINCT queue FROM undone`;

export interface LeasePlan {
  handlers: string[];
  room: number[];
  /** Jobs per handler started as soon as the lease returns (marked started by the fast shape). */
  start: number[];
  /** Lease duration per handler, parallel to `handlers`. */
  leaseMs: number[];
  limit: number;
  exclude: string[];
}

/** Normalise a request: handlers with room (largest room and lease for a name given twice), capped by the limit. */
export function planLease(request: LeaseRequest): LeasePlan | null {
  const limit = Math.floor(request.limit);
  const room = new Map<string, number>();
  const leaseMs = new Map<string, number>();
  const start = new Map<string, number>();
  for (const { name, max, leaseMs: ms = request.leaseMs, start: startNow = 0 } of request.handlers) {
    const n = Math.min(Math.floor(max), limit);
    if (n <= 0) continue;
    room.set(name, Math.max(room.get(name) ?? 0, n));
    leaseMs.set(name, Math.max(leaseMs.get(name) ?? 0, ms));
    // A name given twice: the smaller start count (never mark a job the caller might not start).
    const marks = Math.max(0, Math.floor(startNow));
    start.set(name, start.has(name) ? Math.min(start.get(name)!, marks) : marks);
  }
  if (limit <= 0 || room.size === 0) return null;
  const handlers = [...room.keys()];
  return {
    handlers,
    room: [...room.values()],
    start: handlers.map((name) => start.get(name)!),
    leaseMs: handlers.map((name) => leaseMs.get(name)!),
    limit,
    exclude: [...(request.excludeQueues ?? [])],
  };
}

export interface LeaseCall {
  /** This call's id, stored as `lease_call` on the rows it takes (never part of a token). */
  nonce: string;
  /** Lease expiry per handler, parallel to the plan's `handlers`. */
  expires: number[];
  worker: string;
  keyId: string | null;
  now: number;
}

export function newLeaseCall(request: LeaseRequest, plan: LeasePlan, now: number): LeaseCall {
  return { nonce: randomUUID(), expires: plan.leaseMs.map((ms) => now + ms), worker: request.workerId, keyId: request.keyId ?? null, now };
}

/**
 * Shape 1: one statement. Returns null when keyed jobs are waiting (nothing
 * was leased). `started` hears of each job the statement marked started.
 */
export async function leaseFast(
  db: pg.Pool | pg.PoolClient,
  plan: LeasePlan,
  call: LeaseCall,
  started?: (job: LeasedJob) => void,
): Promise<LeasedJob[] | null> {
  const values: unknown[] = [plan.handlers, plan.room, plan.limit, call.nonce, call.expires, call.worker, call.now, call.keyId, plan.start];
  const excluding = plan.exclude.length > 0;
  if (excluding) values.push(plan.exclude);
  const { rows } = await db.query<unknown[]>({
    name: excluding ? 'drover_lease_fast_excluding' : 'drover_lease_fast',
    text: excluding ? LEASE_FAST_EXCLUDING : LEASE_FAST,
    values,
    rowMode: 'array',
  });
  if (rows[0]?.[AT.keyed_waiting] === true) return null;
  const jobs: LeasedJob[] = [];
  for (const row of rows) {
    if (!isLeased(row)) continue;
    const job = leasedJobOf(row, call);
    if (started && startedNow(row)) started(job);
    jobs.push(job);
  }
  return jobs;
}

export interface Candidate {
  id: number;
  handler: string;
  queue: string;
  tenant: string | null;
  concurrency_key: string | null;
  concurrency_limit: number | null;
  /** Tenant caps on: this transaction holds the tenant's lock (null: no tenant, or caps off). */
  tenant_locked: boolean | null;
}

/** Shape 2: inside the caller's transaction. With `tenantCaps`, tenants are guarded and counted like keys. */
export async function leaseKeyed(client: pg.PoolClient, plan: LeasePlan, call: LeaseCall, tenantCaps?: TenantCaps, report?: LeaseCapReport): Promise<RawLeased[]> {
  const room = new Map(plan.handlers.map((name, i) => [name, plan.room[i]!]));
  let want = plan.limit;
  /** Keys we hold the lock for, with their running count and limit as of now (including our own takes). */
  const keys = new Map<string, { running: number }>();
  /** Keys at their limit, or locked by another node: not worth fetching again. */
  const full = new Set<string>();
  /** Tenants we hold the lock for, with their running counts (null: no tenant caps in this call). */
  const tenants = tenantCaps ? new TenantTally(tenantCaps) : null;
  /** Tenants at their cluster-wide cap: not fetched again. */
  const fullTenants = new Set<string>();
  /** Tenants another node is leasing right now (their lock is held): not fetched again, not a refusal. */
  const elsewhere = new Set<string>();
  /** (queue, tenant) pairs at a per-queue cap. */
  const fullInQueue = new Map<string, { queue: string; tenant: string }>();
  const leased: RawLeased[] = [];

  for (let round = 0; round < MAX_ROUNDS && want > 0 && room.size > 0; round++) {
    const names = [...room.keys()];
    const asked = names.map((name) => Math.min(room.get(name)!, want) + SLACK);
    const { rows: candidates } = await client.query<Candidate>(KEYED_CANDIDATES, [
      names,
      asked,
      plan.exclude,
      [...full],
      [...fullTenants, ...elsewhere],
      [...fullInQueue.values()].map((f) => f.queue),
      [...fullInQueue.values()].map((f) => f.tenant),
      tenants !== null,
    ]);
    if (candidates.length === 0) break;
    if (tenants) await guardTenants(client, candidates, tenants, fullTenants, elsewhere);

    const unseen = [...new Set(candidates.map((c) => c.concurrency_key).filter((k): k is string => k !== null && !keys.has(k) && !full.has(k)))];
    if (unseen.length > 0) {
      const { rows: locks } = await client.query<{ key: string; locked: boolean }>(TRY_KEY_LOCKS, [unseen]);
      const mine = locks.filter((l) => l.locked).map((l) => l.key);
      for (const l of locks) if (!l.locked) full.add(l.key);
      if (mine.length > 0) {
        // A new statement, so a new snapshot: it sees every lease the lock's previous holder committed.
        const { rows: counts } = await client.query<{ key: string; n: number }>(RUNNING_PER_KEY, [mine]);
        const running = new Map(counts.map((c) => [c.key, c.n]));
        for (const key of mine) keys.set(key, { running: running.get(key) ?? 0 });
      }
    }

    const take: number[] = [];
    let blocked = 0;
    for (const c of candidates) {
      if (want === 0) break;
      const left = room.get(c.handler);
      if (left === undefined) continue;
      const tenant = tenants !== null && c.tenant !== null ? c.tenant : null;
      if (tenant !== null && elsewhere.has(tenant)) {
        if (report) report.contended = true;
        blocked++;
        continue;
      }
      if (tenant !== null && (fullTenants.has(tenant) || !tenants!.fits(tenant, c.queue))) {
        noteTenantRefusal(report, tenant, c.queue);
        if (fullTenants.has(tenant) || tenants!.full(tenant)) fullTenants.add(tenant);
        else fullInQueue.set(`${c.queue}\u0000${tenant}`, { queue: c.queue, tenant });
        blocked++;
        continue;
      }
      if (c.concurrency_key !== null) {
        const key = keys.get(c.concurrency_key);
        // A key without a limit means one at a time: the point of a key is serialising.
        if (!key || key.running >= (c.concurrency_limit ?? 1)) {
          full.add(c.concurrency_key);
          blocked++;
          continue;
        }
        key.running++;
      }
      if (tenant !== null) tenants!.take(tenant, c.queue);
      take.push(c.id);
      want--;
      if (left <= 1) room.delete(c.handler);
      else room.set(c.handler, left - 1);
    }
    if (take.length > 0) {
      const { rows } = await client.query<RawLeased>(LEASE_IDS, [take, call.nonce, call.expires, call.worker, call.now, plan.handlers, call.keyId]);
      leased.push(...rows);
    }
    // Nothing was held back by a key or a tenant cap: the scan saw everything these handlers may take now.
    if (blocked === 0) break;
  }
  return leased.sort(compareLeaseOrder);
}

/** Lease shape 2, or the capped forms of either shape (the notes above say which and why), in the caller's transaction. */
export async function leaseInTransaction(client: pg.PoolClient, asked: LeasePlan, call: LeaseCall, request: LeaseRequest): Promise<LeasedJob[]> {
  const caps = request.caps;
  const plan = caps ? await lockHolders(client, asked, call, caps, request.capped) : asked;
  if (plan === null) return [];
  const jobs = (rows: RawLeased[]): LeasedJob[] => rows.map((row) => toLeasedJob(row, call));
  if (caps?.tenants) return jobs(await leaseKeyed(client, plan, call, caps.tenants, request.capped));
  return (caps && (await leaseFast(client, plan, call))) ?? jobs(await leaseKeyed(client, plan, call));
}
