/**
 * Durable execution's transitions on PostgreSQL, each inside the caller's
 * transaction (READ COMMITTED).
 *
 * Never miss an event: a suspend on an `event` wait and an ingest of an event
 * of one of its names are ordered by a transaction advisory lock per event
 * name, exclusive in suspend and shared in ingest (taken in sorted name order,
 * so two of them never wait for each other in a cycle). Each reads after
 * taking its lock, in a new statement (a new snapshot): either the ingest
 * committed before the suspend's look-back ran, and the look-back finds the
 * event, or the suspend committed before the ingest's lookup ran, and the
 * lookup finds the wait. Ingests do not block each other (shared).
 *
 * Row locks are taken wait first, then job, everywhere (ingest, stageDue,
 * resume, and cancel, which locks a suspended job's wait before the job), and
 * several waits in id order, so wake-ups and cancels cannot deadlock.
 *
 * Queue depth (`maxDepth`) counts scheduled, queued and running jobs, not
 * suspended ones (a job waiting days for a person must not block intake): a
 * suspend counts its job `finished`, a wake-up counts it `added` again
 * without a room check (intake.ts, `IntakeEffects.resumed`).
 */
import type pg from 'pg';
import { waitAccepts, type StepRow, type SuspendRequest, type WaitRow } from '../../core/durable.js';
import type { EventRow } from '../../core/types.js';
import {
  eventAsResult,
  eventResolver,
  jsonBytes,
  mapStepRow,
  mapWaitRow,
  newWaitId,
  stepLimitRefusal,
  TIMER_RESOLVER,
  type StepColumns,
  type WaitColumns,
} from '../durable-rows.js';
import type { RecordStepRequest, RecordStepResult, ResolvedWait, ResumeResult, SuspendResult, WaitFilter } from '../roles/durable-store.js';
import type { IntakeEffects } from './intake.js';
import { keysetQuery } from './queries.js';
import { toEventRow, toJobRow, toJson, type RawEvent, type RawJob } from './rows.js';

export type RawStep = StepColumns<unknown>;
export type RawWait = WaitColumns<unknown>;

const asIs = <T>(value: T): T => value;
export const toStepRow = (raw: RawStep): StepRow => mapStepRow(raw, asIs);
export const toWaitRow = (raw: RawWait): WaitRow => mapWaitRow(raw, asIs);

/** The advisory lock key of an event name in this schema (`$1`: the names, sorted). */
const NAME_KEY = "hashtextextended('drover:wait:' || current_schema() || ':' || name, 0)";

/** Exclusive per-name locks for a suspend; arrays unnest in order, so they are taken in sorted order. */
const LOCK_NAMES = `SELECT count(*) FROM (SELECT pg_advisory_xact_lock(${NAME_KEY}) FROM unnest($1::text[]) AS t(name)) AS l`;

/** The shared per-name locks an ingest takes (a CTE for the events insert; `$n`: sorted names). */
export function sharedNameLocks(param: string): string {
  return `SELECT count(*) AS n FROM (SELECT pg_advisory_xact_lock_shared(${NAME_KEY}) FROM unnest(${param}::text[]) AS t(name)) AS l`;
}

/** Names sorted and without repeats: the order every transaction takes their locks in. */
export function lockOrder(names: Iterable<string>): string[] {
  return [...new Set(names)].sort();
}

const FENCED_JOB = `
  SELECT j.id, j.queue, j.handler, j.lease_seq, j.worker_id, j.leased_at, e.tenant
  FROM jobs j LEFT JOIN events e ON e.id = j.event_id
  WHERE j.id = $1 AND j.lease_token = $2 AND j.state = 'running'
  FOR NO KEY UPDATE OF j`;

interface FencedJob {
  id: number;
  queue: string;
  handler: string;
  lease_seq: number;
  worker_id: string | null;
  leased_at: number | null;
  tenant: string | null;
}

const STEP_TOTALS = `
  SELECT count(*)::int AS n, coalesce(sum(result_bytes), 0)::bigint AS bytes, bool_or(name = $2) AS taken
  FROM steps WHERE job_id = $1`;

const INSERT_STEP = `
  INSERT INTO steps (job_id, name, seq, kind, attempt, started_at, finished_at, result, result_bytes, timed_out)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8::json, $9, $10)
  ON CONFLICT DO NOTHING
  RETURNING *`;

async function fence(client: pg.PoolClient, id: number | null, token: string): Promise<FencedJob | { ok: false; reason: 'stale_lease' | 'not_found' }> {
  if (id === null) return { ok: false, reason: 'not_found' };
  const job = (await client.query<FencedJob>(FENCED_JOB, [id, token])).rows[0];
  if (job) return job;
  const exists = (await client.query('SELECT 1 FROM jobs WHERE id = $1', [id])).rows.length > 0;
  return { ok: false, reason: exists ? 'stale_lease' : 'not_found' };
}

interface StepWrite {
  name: string;
  seq: number;
  kind: StepRow['kind'];
  startedAt: number;
  result: unknown;
  timedOut?: boolean;
}

async function insertStep(client: pg.PoolClient, job: FencedJob, step: StepWrite, now: number, json = toJson(step.result)): Promise<StepRow | null> {
  const { rows } = await client.query<RawStep>(INSERT_STEP, [
    job.id,
    step.name,
    step.seq,
    step.kind,
    job.lease_seq,
    step.startedAt,
    now,
    json,
    jsonBytes(json),
    step.timedOut ?? false,
  ]);
  return rows[0] ? toStepRow(rows[0]) : null;
}

export async function recordStep(client: pg.PoolClient, id: number | null, token: string, request: RecordStepRequest, now: number): Promise<RecordStepResult> {
  const job = await fence(client, id, token);
  if ('ok' in job) return job;
  // After the row lock (a new statement, a new snapshot): concurrent steps of this job are counted.
  const totals = (await client.query<{ n: number; bytes: number; taken: boolean | null }>(STEP_TOTALS, [job.id, request.name])).rows[0]!;
  if (totals.taken) return { ok: false, reason: 'duplicate' };
  const json = toJson(request.result);
  const refusal = stepLimitRefusal(jsonBytes(json), totals.n, Number(totals.bytes), request.limits);
  if (refusal) return { ok: false, reason: 'limit', ...refusal };
  const step = await insertStep(client, job, request, now, json);
  return step ? { ok: true, step } : { ok: false, reason: 'duplicate' };
}

/** $1 names, then keyset ($2 received_at, $3 id) from the look-back's start, $4 page size. */
const LOOK_BACK = `
  SELECT * FROM events WHERE name = ANY($1::text[]) AND (received_at, id) > ($2::bigint, $3::text)
  ORDER BY received_at, id LIMIT $4`;
const LOOK_BACK_PAGE = 200;
const EVENT_STEP_IDS = "SELECT result->>'id' AS id FROM steps WHERE job_id = $1 AND kind = 'event'";

const SUSPEND_JOB = `
  UPDATE jobs SET state = 'suspended', run_at = coalesce($3::bigint, run_at), attempts = greatest(attempts - 1, 0),
    lease_token = NULL, lease_expires_at = NULL, worker_id = NULL, updated_at = $4
  WHERE id = $1 AND lease_token = $2 AND state = 'running'
  RETURNING *`;

/** The suspension's other rows in one statement: its attempt, the wait, the names it listens for, the depth count. */
const SUSPEND_ROWS = `
  WITH attempt AS (
    INSERT INTO attempts (job_id, attempt, worker_id, started_at, ended_at, outcome, error)
    VALUES ($2, $17, $18, $19, $10, 'suspended', NULL)
  ), counted AS (
    INSERT INTO queue_counts (queue, kind, n) VALUES ($16, 'finished', 1)
    ON CONFLICT (queue, kind) DO UPDATE SET n = queue_counts.n + 1
  ), wait AS (
    INSERT INTO waits (id, job_id, handler, tenant, step, seq, kind, state, created_at, started_at, wake_at,
                       events, match, prompt, schema)
    VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $10, $8, $9, $11::text[], $12::json, $13, $14::json)
    RETURNING *
  ), names AS (
    INSERT INTO wait_events (event_name, wait_id) SELECT name, $1 FROM unnest($15::text[]) AS t(name)
  )
  SELECT * FROM wait`;

export async function suspend(client: pg.PoolClient, id: number | null, token: string, request: SuspendRequest, now: number): Promise<SuspendResult> {
  const job = await fence(client, id, token);
  if ('ok' in job) return job;
  const stored = (await client.query<RawStep>('SELECT * FROM steps WHERE job_id = $1 AND name = $2', [job.id, request.step])).rows[0];
  if (stored) return { ok: true, suspended: false, step: toStepRow(stored) };

  const step = { name: request.step, seq: request.seq, kind: request.kind, startedAt: request.startedAt };
  const events = request.kind === 'event' ? lockOrder(request.events ?? []) : null;
  const match = request.kind === 'event' ? (request.match ?? null) : null;
  if (events && events.length > 0) {
    await client.query(LOCK_NAMES, [events]);
    const event = await lookBack(client, job.id, { events, match, tenant: job.tenant }, request.startedAt);
    if (event) return storedStep(await insertStep(client, job, { ...step, result: eventAsResult(event) }, now));
  }
  if (request.wakeAt !== null && request.wakeAt <= now) {
    // The sleep is over, or the wait's timeout passed before it was recorded.
    return storedStep(await insertStep(client, job, { ...step, result: null, timedOut: request.kind !== 'sleep' }, now));
  }

  const raw = (await client.query<RawJob>(SUSPEND_JOB, [job.id, token, request.wakeAt, now])).rows[0]!;
  const wait = (
    await client.query<RawWait>(SUSPEND_ROWS, [
      newWaitId(now),
      job.id,
      job.handler,
      job.tenant,
      request.step,
      request.seq,
      request.kind,
      request.startedAt,
      request.wakeAt,
      now,
      events,
      match === null ? null : JSON.stringify(match),
      request.kind === 'interrupt' ? (request.prompt ?? null) : null,
      request.kind === 'interrupt' && request.schema !== undefined ? toJson(request.schema) : null,
      events ?? [],
      job.queue,
      job.lease_seq,
      job.worker_id ?? '',
      job.leased_at ?? now,
    ])
  ).rows[0]!;
  return { ok: true, suspended: true, wait: toWaitRow(wait), job: toJobRow(raw) };
}

function storedStep(step: StepRow | null): SuspendResult {
  // No step of this name existed a moment ago, under the job's row lock.
  return { ok: true, suspended: false, step: step! };
}

/**
 * The earliest event accepted since `since` that the wait accepts and that
 * resolved no other step of this job; read a page at a time, oldest first,
 * so a long look-back over a busy name stops at the first match.
 */
async function lookBack(client: pg.PoolClient, jobId: number, wait: Pick<WaitRow, 'events' | 'match' | 'tenant'>, since: number): Promise<EventRow | null> {
  const used = new Set((await client.query<{ id: string | null }>(EVENT_STEP_IDS, [jobId])).rows.map((r) => r.id ?? ''));
  let after: { receivedAt: number; id: string } = { receivedAt: since, id: '' };
  for (;;) {
    const { rows } = await client.query<RawEvent>(LOOK_BACK, [wait.events, after.receivedAt, after.id, LOOK_BACK_PAGE]);
    for (const raw of rows) {
      const event = toEventRow(raw);
      if (waitAccepts(wait, event) && !used.has(event.id)) return event;
    }
    if (rows.length < LOOK_BACK_PAGE) return null;
    const last = rows.at(-1)!;
    after = { receivedAt: last.received_at, id: last.id };
  }
}

/**
 * Settle pending waits (compare-and-set) in one statement: each wait's new
 * state, its step stored, its job queued; rows come back for the waits that
 * were still pending. $1 ids (in id order), $2 states, $3 resolvers,
 * $4 results (JSON), $5 result sizes, $6 timed out, $7 now.
 */
const SETTLE_WAITS = `
  WITH input AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::bool[])
      AS t(id, state, resolved_by, result, result_bytes, timed_out)
  ), w AS (
    UPDATE waits SET state = input.state, resolved_at = $7, resolved_by = input.resolved_by
    FROM input WHERE waits.id = input.id AND waits.state = 'pending'
    RETURNING waits.*
  ), names AS (
    DELETE FROM wait_events WHERE wait_id IN (SELECT id FROM w)
  ), j AS (
    UPDATE jobs SET state = 'queued', run_at = $7, updated_at = $7
    FROM w WHERE jobs.id = w.job_id AND jobs.state = 'suspended'
    RETURNING jobs.*
  ), s AS (
    INSERT INTO steps (job_id, name, seq, kind, attempt, started_at, finished_at, result, result_bytes, timed_out)
    SELECT j.id, w.step, w.seq, w.kind, j.lease_seq, w.started_at, $7, input.result::json, input.result_bytes, input.timed_out
    FROM w JOIN j ON j.id = w.job_id JOIN input ON input.id = w.id
    ON CONFLICT DO NOTHING
  )
  SELECT row_to_json(w) AS wait, row_to_json(j) AS job FROM w LEFT JOIN j ON j.id = w.job_id ORDER BY w.id`;

interface Settlement {
  id: string;
  state: 'resolved' | 'timed_out';
  by: string | null;
  result: unknown;
}

/** Settle waits; the woken jobs' queues go into `effects` (counted `added` and notified at the end of the transaction). */
async function settle(client: pg.PoolClient, settlements: Settlement[], now: number, effects: IntakeEffects): Promise<{ wait: WaitRow; job: RawJob | null }[]> {
  if (settlements.length === 0) return [];
  const sorted = [...settlements].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const json = sorted.map((s) => toJson(s.result));
  const { rows } = await client.query<{ wait: RawWait; job: RawJob | null }>(SETTLE_WAITS, [
    sorted.map((s) => s.id),
    sorted.map((s) => s.state),
    sorted.map((s) => s.by),
    json,
    json.map(jsonBytes),
    sorted.map((s) => s.state === 'timed_out'),
    now,
  ]);
  for (const { job } of rows) {
    if (!job) continue;
    effects.resumed.set(job.queue, (effects.resumed.get(job.queue) ?? 0) + 1);
    effects.woken.add(job.queue, job.handler);
  }
  return rows.map((r) => ({ wait: toWaitRow(r.wait), job: r.job }));
}

const WAITS_FOR_EVENTS = `
  SELECT w.* FROM wait_events e JOIN waits w ON w.id = e.wait_id
  WHERE e.event_name = ANY($1::text[]) AND w.state = 'pending'
  ORDER BY w.id`;

/**
 * In the transaction that accepted `events` (after their names' shared
 * locks): resolve the pending waits they satisfy, each by the first event (in
 * intake order) that it accepts. Returns the resolutions per event id.
 */
export async function resolveByEvents(client: pg.PoolClient, events: readonly EventRow[], now: number, effects: IntakeEffects): Promise<Map<string, ResolvedWait[]>> {
  const byEvent = new Map<string, ResolvedWait[]>();
  if (events.length === 0) return byEvent;
  const { rows } = await client.query<RawWait>(WAITS_FOR_EVENTS, [lockOrder(events.map((e) => e.name))]);
  if (rows.length === 0) return byEvent;
  const chosen = new Map<string, EventRow>();
  for (const raw of rows) {
    const wait = toWaitRow(raw);
    const event = events.find((e) => waitAccepts(wait, e));
    if (event) chosen.set(wait.id, event);
  }
  const settled = await settle(
    client,
    [...chosen].map(([id, event]) => ({ id, state: 'resolved', by: eventResolver(event.id), result: eventAsResult(event) })),
    now,
    effects,
  );
  for (const { wait, job } of settled) {
    const event = chosen.get(wait.id)!;
    const list = byEvent.get(event.id) ?? [];
    list.push({ wait, event, job: job ? toJobRow(job) : await jobOf(client, wait) });
    byEvent.set(event.id, list);
  }
  return byEvent;
}

async function jobOf(client: pg.PoolClient, wait: WaitRow): Promise<ReturnType<typeof toJobRow>> {
  return toJobRow((await client.query<RawJob>('SELECT * FROM jobs WHERE id = $1', [wait.jobId])).rows[0]!);
}

const DUE_WAITS = `
  SELECT id, kind FROM waits WHERE state = 'pending' AND wake_at <= $1
  ORDER BY wake_at LIMIT $2 FOR UPDATE SKIP LOCKED`;

/** Wake suspended jobs whose sleep ended or whose wait timed out, at most `limit` (waits another transaction holds are skipped). */
export async function wakeDue(client: pg.PoolClient, now: number, limit: number, effects: IntakeEffects): Promise<WaitRow[]> {
  const { rows } = await client.query<{ id: string; kind: string }>(DUE_WAITS, [now, limit]);
  const settled = await settle(
    client,
    rows.map((r) => (r.kind === 'sleep' ? { id: r.id, state: 'resolved', by: TIMER_RESOLVER, result: null } : { id: r.id, state: 'timed_out', by: null, result: null })),
    now,
    effects,
  );
  return settled.map((s) => s.wait);
}

export const NEXT_WAKE = "SELECT min(wake_at) AS t FROM waits WHERE state = 'pending' AND wake_at IS NOT NULL";

export async function resumeWait(client: pg.PoolClient, waitId: string, input: unknown, resolvedBy: string, now: number, effects: IntakeEffects): Promise<ResumeResult> {
  const raw = (await client.query<RawWait>('SELECT * FROM waits WHERE id = $1', [waitId])).rows[0];
  if (!raw || raw.kind !== 'interrupt') return { ok: false, reason: 'not_found' };
  const [done] = await settle(client, [{ id: waitId, state: 'resolved', by: resolvedBy, result: input }], now, effects);
  if (!done) {
    const current = (await client.query<RawWait>('SELECT * FROM waits WHERE id = $1', [waitId])).rows[0]!;
    return { ok: false, reason: 'conflict', wait: toWaitRow(current) };
  }
  return { ok: true, wait: done.wait, job: done.job ? toJobRow(done.job) : await jobOf(client, done.wait) };
}

/** Before cancelling a job: lock its pending wait (wait before job, the order every wake-up takes). */
export const LOCK_PENDING_WAIT = "SELECT id FROM waits WHERE job_id = $1 AND state = 'pending' FOR UPDATE";

/** A suspended job was cancelled: its pending wait is cancelled too (never resolved later). */
export async function cancelWaits(client: pg.PoolClient, jobId: number, now: number): Promise<void> {
  await client.query(
    `WITH w AS (
       UPDATE waits SET state = 'cancelled', resolved_at = $2 WHERE job_id = $1 AND state = 'pending' RETURNING id
     )
     DELETE FROM wait_events WHERE wait_id IN (SELECT id FROM w)`,
    [jobId, now],
  );
}

/** listWaits: filters as parameters, newest first (ids sort by creation), keyset on id. */
export function listWaitsQuery(filter: WaitFilter): { text: string; values: unknown[] } {
  return keysetQuery('waits', { kind: filter.kind, state: filter.state, handler: filter.handler }, filter.before, filter.limit);
}

export const STEPS_BY_JOB = 'SELECT * FROM steps WHERE job_id = $1 ORDER BY seq';
export const WAIT_BY_ID = 'SELECT * FROM waits WHERE id = $1';
export const PENDING_WAIT_OF_JOB = "SELECT * FROM waits WHERE job_id = $1 AND state = 'pending'";
export const PENDING_INTERRUPTS = "SELECT count(*)::int AS n, min(created_at) AS oldest FROM waits WHERE kind = 'interrupt' AND state = 'pending'";
