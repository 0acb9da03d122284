/**
 * Intake: inserting jobs, in one statement (`enqueuePlain`) or in the
 * caller's transaction (`insertJobs`, keyed jobs), with a fixed number of
 * statements however many rows come in (arrays + unnest). Events and their
 * trigger fan-out go through ingest.ts, which inserts its jobs here.
 *
 * Idempotency is resolved before the depth limit, so a duplicate of a job
 * that already exists is answered even when its queue is full (it adds
 * nothing). A concurrent insert of the same key on another node is settled by
 * the unique index: `ON CONFLICT DO NOTHING` waits for it, and the row is then
 * read back as "not created".
 *
 * The queue depth counters are updated last, just before COMMIT, in queue
 * order: their rows are the hottest in the schema (every completion batch
 * subtracts from them), so intake holds their locks for one round trip only.
 */
import type pg from 'pg';
import { QueueFullError } from '../../core/errors.js';
import { randomUUID } from 'node:crypto';
import type { JobRow, LeasedJob, NewJob } from '../../core/types.js';
import type { EnqueueOptions } from '../engine.js';
import { Woken } from '../woken.js';
import { arrayParam, isTransient } from './connection.js';
import { fairQueues, insertParams, jobColumns } from './intake-params.js';
import { insertedJobRow, insertedRawJob, leasedAtIntake, storedText } from './intake-rows.js';
import { notifyPayload } from './notifier.js';
import type { RawJob } from './rows.js';

export interface InsertedJob {
  raw: RawJob;
  created: boolean;
}

/**
 * What an intake transaction learned: per-queue depth changes and queues
 * with due work. `resumed`: suspended jobs queued again (their waits
 * resolved); counted like new jobs but never refused for a full queue.
 */
export interface IntakeEffects {
  created: Map<string, number>;
  resumed: Map<string, number>;
  woken: Woken;
}

export function newIntakeEffects(): IntakeEffects {
  return { created: new Map(), resumed: new Map(), woken: new Woken() };
}

/**
 * A job leased by its own insert (`EnqueueOptions.lease`) is written as the
 * lease's fast shape leaves a job it marks started (lease.ts): running,
 * attempt 1, `started_seq = lease_seq`, its own random token. `until`: the
 * placeholder of the jobs' lease expiries (null for a job not leased),
 * `worker` and `call` the worker's and the call's.
 */
const LEASE_COLUMNS = ', attempts, lease_seq, started_seq, lease_token, lease_call, lease_expires_at, worker_id, leased_at';
const leaseValues = ({ worker, call }: LeasePlaceholders) => `,
         CASE WHEN t.lease_until IS NULL THEN 0 ELSE 1 END, CASE WHEN t.lease_until IS NULL THEN 0 ELSE 1 END,
         CASE WHEN t.lease_until IS NULL THEN 0 ELSE 1 END, CASE WHEN t.lease_until IS NOT NULL THEN gen_random_uuid()::text END,
         CASE WHEN t.lease_until IS NOT NULL THEN ${call}::text END, t.lease_until,
         CASE WHEN t.lease_until IS NOT NULL THEN ${worker}::text END, CASE WHEN t.lease_until IS NOT NULL THEN $12::bigint END`;

interface LeasePlaceholders {
  until: string;
  worker: string;
  call: string;
}

/**
 * What one job insert's text holds beyond the plain columns, each only where
 * it is needed (a part left in costs its executor set-up and per-row work
 * even when it does nothing: docs/benchmarks.md "Intake: the statement's
 * parts"). `fair`: the placeholder of the fair queues, when any job of the
 * statement is in one; `lease`: the intake lease's, when a job is leased;
 * `keyed`: some job has an idempotency key (ON CONFLICT, whose speculative
 * insertion writes one WAL record more per row).
 */
interface InsertShape {
  fair: string | null;
  lease: LeasePlaceholders | null;
  keyed: boolean;
}

/**
 * $1..$14 the jobs' columns and the time (jobColumns). Each column is an
 * array (the payloads one JSON array), zipped into rows in input order
 * (`ord`) by set-returning functions in the select list, which run in
 * lockstep (a shorter array, such as a column of nulls sent as '{}', is
 * padded with nulls): unlike ROWS FROM, which copies each function's output
 * into a tuplestore of its own first, they hand their rows straight up
 * (docs/benchmarks.md "Intake: the statement's parts"). A job in a
 * fair queue gets its tenant's next turn (docs/configuration.md "Fairness
 * across tenants"): `max(head, tail) + n`, head = the queue's smallest queued
 * turn (with nothing queued, its largest scheduled one: sqlite/intake.ts
 * fairTag says why), tail = the tenant's largest waiting turn (a null tenant is a tenant
 * of its own), n = its place among this statement's jobs of that tenant and
 * queue, so a batch lines a tenant's jobs up one turn apart as single inserts
 * would. Head and tail are read once per (queue, tenant) of the statement
 * (`turns`), not per row. Two transactions inserting for one tenant at once
 * read the same tail and may give their jobs equal turns: those jobs then
 * share a turn (ordered by priority, age and id), a small and temporary
 * unfairness accepted rather than serialising every insert into a fair queue
 * on a lock. Without a fair queue every turn is 0.
 *
 * `returning`: only what the database chose and the caller needs; the rows
 * themselves are built from the input (intake-rows.ts says why).
 */
const insertJobsSql = (returning: string, { fair, lease, keyed }: InsertShape) => `
  INSERT INTO jobs (handler, queue, state, payload, event_id, priority, run_at, max_attempts,
                    idempotency_key, concurrency_key, concurrency_limit, traceparent, tenant, priority_ms,
                    fair_tag, created_at, updated_at${lease ? LEASE_COLUMNS : ''})
  SELECT handler, t.queue, CASE ${lease ? "WHEN t.lease_until IS NOT NULL THEN 'running' " : ''}WHEN run_at <= $12 THEN 'queued' ELSE 'scheduled' END, payload, event_id,
         priority, run_at, max_attempts, idempotency_key, concurrency_key, concurrency_limit, traceparent, t.tenant, priority_ms,
         ${fair ? 'CASE WHEN turns.base IS NULL THEN 0 ELSE turns.base + row_number() OVER (PARTITION BY t.queue, t.tenant ORDER BY t.ord) END' : '0'},
         $12, $12${lease ? leaseValues(lease) : ''}
  FROM (SELECT unnest($1::text[]) AS handler, unnest($2::text[]) AS queue, json_array_elements($3::json) AS payload,
          unnest($4::text[]) AS event_id, unnest($5::int[]) AS priority, unnest($6::bigint[]) AS run_at, unnest($7::int[]) AS max_attempts,
          unnest($8::text[]) AS idempotency_key, unnest($9::text[]) AS concurrency_key, unnest($10::int[]) AS concurrency_limit,
          unnest($11::text[]) AS traceparent, unnest($13::text[]) AS tenant, unnest($14::bigint[]) AS priority_ms,
          ${lease ? `unnest(${lease.until}::bigint[]) AS lease_until, ` : ''}generate_series(1, cardinality($1::text[])) AS ord) AS t${fair ? fairTurns(fair) : ''}
  ORDER BY ord${keyed ? '\n  ON CONFLICT (handler, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING' : ''}
  RETURNING ${returning}`;

/** The fair queues' turns, per (queue, tenant) of the statement (insertJobsSql). */
const fairTurns = (fairQueues: string) => `
  LEFT JOIN (
    SELECT g.queue, g.tenant, greatest(
      coalesce(
        (SELECT h.fair_tag FROM jobs h WHERE h.queue = g.queue AND h.state = 'queued' AND h.fair_tag > 0 ORDER BY h.fair_tag LIMIT 1),
        (SELECT h.fair_tag FROM jobs h WHERE h.queue = g.queue AND h.state = 'scheduled' AND h.fair_tag > 0 ORDER BY h.fair_tag DESC LIMIT 1)),
      CASE WHEN g.tenant IS NULL
        THEN (SELECT f.fair_tag FROM jobs f WHERE f.queue = g.queue AND f.tenant IS NULL
                AND f.state IN ('queued', 'scheduled') AND f.fair_tag > 0 ORDER BY f.fair_tag DESC LIMIT 1)
        ELSE (SELECT f.fair_tag FROM jobs f WHERE f.queue = g.queue AND f.tenant = g.tenant
                AND f.state IN ('queued', 'scheduled') AND f.fair_tag > 0 ORDER BY f.fair_tag DESC LIMIT 1)
      END,
      0) AS base
    FROM (SELECT DISTINCT u.queue, u.tenant FROM unnest($2::text[], $13::text[]) AS u(queue, tenant)
          WHERE u.queue = ANY(${fairQueues}::text[])) AS g
  ) AS turns ON turns.queue = t.queue AND turns.tenant IS NOT DISTINCT FROM t.tenant`;

/** The keyed insert's answer: keyed rows are matched to their jobs by (handler, key), the others by id order. */
const INSERT_JOBS = insertJobsSql('id, handler, idempotency_key, fair_tag', { fair: '$15', lease: null, keyed: true });

/** SQLSTATE raised by \`queue_full()\` (see 0001_init.sql). */
const QUEUE_FULL_SQLSTATE = 'DR001';

/** What the plain insert wrote: rows in input order, the due work to announce, and the jobs it leased (null: none asked). */
export interface PlainInserted {
  rows: JobRow[];
  woken: Woken;
  leased: Array<LeasedJob | null> | null;
}

/** True when every job can take the one-statement path (nothing to deduplicate). */
export function isPlain(jobs: readonly NewJob[]): boolean {
  return jobs.length > 0 && jobs.every((j) => j.idempotencyKey == null);
}

/**
 * Insert jobs that carry no idempotency key, in one autocommit statement (see
 * plainStatement), and answer their rows in input order. Throws
 * `QueueFullError`, having written nothing, when a limited queue would
 * overflow.
 */
export async function enqueuePlain(
  db: pg.Pool,
  jobs: readonly NewJob[],
  now: number,
  options: EnqueueOptions | undefined,
  notify: { channel: string; instanceId: string },
  /** The statement failed for a connection reason with jobs to lease: it may have committed them leased (undo by `lease_call`). */
  uncertain?: (call: string, workerId: string) => void,
): Promise<PlainInserted> {
  const woken = new Woken();
  const queues = new Set<string>();
  const lease = options?.lease;
  const leaseUntil = jobs.map((job, n) => {
    const ms = job.runAt <= now ? lease?.leaseMs[n] : null;
    return ms == null ? null : now + ms;
  });
  jobs.forEach((job, n) => {
    queues.add(job.queue);
    // A job leased by its insert is this node's already: nobody needs waking for it.
    if (job.runAt <= now && leaseUntil[n] === null) woken.add(job.queue, job.handler);
  });
  const leasing = leaseUntil.some((at) => at !== null);
  const limits = [...(options?.queueLimits ?? [])].filter(([queue]) => queues.has(queue));
  const fair = fairQueues(options).filter((queue) => queues.has(queue));
  const call = leasing ? randomUUID() : null;
  const statement = plainStatementFor({ fair: fair.length > 0, limited: limits.length > 0, leasing });
  // In plainStatement's placeholder order.
  const values = jobColumns(jobs, now);
  if (fair.length > 0) values.push(arrayParam(fair));
  if (limits.length > 0) values.push(arrayParam(limits.map(([queue]) => queue)), arrayParam(limits.map(([, limit]) => limit.maxDepth)));
  values.push(notify.channel, woken.empty ? '' : notifyPayload(notify.instanceId, woken));
  if (leasing) values.push(arrayParam(leaseUntil), lease!.workerId, call);
  try {
    const { rows } = await db.query<{ ids: string | null; tokens?: string | null }>({ name: statement.name, text: statement.text, values });
    const ids = rows[0]?.ids?.split(',') ?? [];
    // Unkeyed rows cannot conflict: one id per job, or the statement failed.
    if (ids.length !== jobs.length) throw new Error(`enqueue inserted ${ids.length} rows for ${jobs.length} jobs`);
    const inserted = jobs.map((job, n) => insertedJobRow(job, ids[n]!, now));
    if (!leasing) return { rows: inserted, woken, leased: null };
    const tokens = rows[0]?.tokens?.split(',') ?? [];
    const leased = inserted.map((row, n) => (leaseUntil[n] === null ? null : leasedAtIntake(row, tokens[n]!, leaseUntil[n]!, lease!.workerId)));
    return { rows: inserted, woken, leased };
  } catch (error) {
    const e = error as { code?: string; detail?: string; hint?: string };
    if (e.code === QUEUE_FULL_SQLSTATE) throw new QueueFullError(e.detail ?? '', Number(e.hint));
    if (call !== null && isTransient(error)) uncertain?.(call, lease!.workerId);
    throw error;
  }
}

const JOBS_BY_KEYS = `
  SELECT j.* FROM jobs j
  JOIN unnest($1::text[], $2::text[]) AS k(handler, idempotency_key)
    ON j.handler = k.handler AND j.idempotency_key = k.idempotency_key`;

/** Unfinished jobs of a counted queue: 'added' (just locked and updated) minus 'finished' (read without a lock). */
const DEPTH_OF = (added: string) =>
  `${added}.n - coalesce((SELECT f.n FROM queue_counts f WHERE f.queue = ${added}.queue AND f.kind = 'finished'), 0)`;

const ADD_DEPTH = `
  WITH up AS (
    INSERT INTO queue_counts (queue, kind, n)
    SELECT queue, 'added', n FROM unnest($1::text[], $2::bigint[]) AS t(queue, n) ORDER BY queue
    ON CONFLICT (queue, kind) DO UPDATE SET n = queue_counts.n + excluded.n
    RETURNING queue, n
  )
  SELECT queue, ${DEPTH_OF('up')} AS depth, (SELECT count(*) FROM (SELECT pg_notify($3, $4) WHERE $4 <> '') AS n) AS notified FROM up`;

/** Which parts a plain enqueue's statement needs (`plainStatement`). */
interface PlainShape {
  /** A job of the statement is in a fair queue (QueueLimit.fairness). */
  fair: boolean;
  /** A queue of the statement has a depth limit. */
  limited: boolean;
  /** A job is leased by its insert. */
  leasing: boolean;
}

/**
 * Jobs without idempotency keys, in ONE statement (no BEGIN/COMMIT round
 * trips, and the queue counter row is locked only from its update to the
 * commit): insert, count them into their queues, refuse through
 * \`queue_full()\` (which aborts the statement) when a limited queue would
 * overflow, and notify other nodes. Each part is in the text only when the
 * statement needs it (`PlainShape`; one prepared statement per shape), so
 * the common statement, no fair queue and no lease, carries neither the
 * turns' join nor the lease's columns. The counter is always there: a
 * queue's depth is `added - finished`, and a limit set later must find every
 * job counted.
 *
 * Placeholders after $14, in this order, each only with its part: the fair
 * queues; the limited queues and their limits; the channel and payload ('' =
 * none); the lease expiries, worker and call. `plainValues` sends them so.
 *
 * The answer is one row: the new ids as text, in id order, which is input
 * order (the insert takes the rows in `ord` order and identity values rise
 * in insertion order), and the leased jobs' tokens likewise. One row, not one
 * per job: the driver's cost is per row and per column.
 */
function plainStatement(shape: PlainShape): { name: string; text: string } {
  let n = 14;
  const next = () => `$${++n}`;
  const fair = shape.fair ? next() : null;
  const limits = shape.limited ? { queues: next(), max: next() } : null;
  const channel = next();
  const payload = next();
  const lease = shape.leasing ? { until: next(), worker: next(), call: next() } : null;
  const text = `
  WITH inserted AS (${insertJobsSql(`id, queue${lease ? ', lease_token' : ''}`, { fair, lease, keyed: false })}
  ), added AS (
    INSERT INTO queue_counts (queue, kind, n)
    SELECT queue, 'added', count(*) FROM inserted GROUP BY queue ORDER BY queue
    ON CONFLICT (queue, kind) DO UPDATE SET n = queue_counts.n + excluded.n
    RETURNING queue, n
  )${
    limits
      ? `, refused AS (
    SELECT queue_full(added.queue, l.max_depth) FROM added
    JOIN unnest(${limits.queues}::text[], ${limits.max}::bigint[]) AS l(queue, max_depth) ON l.queue = added.queue
    WHERE ${DEPTH_OF('added')} > l.max_depth
  )`
      : ''
  }
  SELECT string_agg(id::text, ',' ORDER BY id) AS ids${lease ? `, string_agg(coalesce(lease_token, ''), ',' ORDER BY id) AS tokens` : ''},
    ${limits ? '(SELECT count(*) FROM refused) AS refused, ' : ''}(SELECT count(*) FROM (SELECT pg_notify(${channel}, ${payload}) WHERE ${payload} <> '') AS n) AS notified
  FROM inserted`;
  const name = `drover_enqueue_plain${shape.fair ? '_fair' : ''}${shape.limited ? '_limited' : ''}${shape.leasing ? '_leasing' : ''}`;
  return { name, text };
}

/** The statements by shape (`plainStatement`), built on first use. */
const plainStatements = new Map<number, { name: string; text: string }>();

function plainStatementFor(shape: PlainShape): { name: string; text: string } {
  const key = (shape.fair ? 1 : 0) | (shape.limited ? 2 : 0) | (shape.leasing ? 4 : 0);
  let statement = plainStatements.get(key);
  if (!statement) plainStatements.set(key, (statement = plainStatement(shape)));
  return statement;
}

/** A job's (handler, idempotency key) as stored: an input key and the row it wrote give the same. */
const keyOf = (handler: string, key: string) => `${storedText(handler)}\u0000${storedText(key)}`;

/** What INSERT_JOBS returns per inserted row. */
interface InsertedIds {
  id: number;
  handler: string;
  idempotency_key: string | null;
  fair_tag: number;
}

/**
 * Insert `jobs` (deduplicating by (handler, idempotency key), also within the
 * call) and return one result per input, in order.
 */
export async function insertJobs(
  client: pg.PoolClient,
  jobs: readonly NewJob[],
  now: number,
  effects: IntakeEffects,
  options?: EnqueueOptions,
): Promise<InsertedJob[]> {
  const results: Array<InsertedJob | undefined> = new Array(jobs.length);
  const firstOfKey = new Map<string, number>();
  const duplicateOf = new Map<number, number>();
  jobs.forEach((job, i) => {
    const key = job.idempotencyKey ?? null;
    if (key === null) return;
    const k = keyOf(job.handler, key);
    const first = firstOfKey.get(k);
    if (first === undefined) firstOfKey.set(k, i);
    else duplicateOf.set(i, first);
  });

  const keyed = [...firstOfKey.entries()];
  const existing = keyed.length === 0 ? new Map<string, RawJob>() : await jobsByKeys(client, keyed.map(([, i]) => jobs[i]!));
  for (const [k, i] of keyed) {
    const raw = existing.get(k);
    if (raw) results[i] = { raw, created: false };
  }

  const toInsert: number[] = [];
  jobs.forEach((_, i) => {
    if (results[i] === undefined && !duplicateOf.has(i)) toInsert.push(i);
  });
  if (toInsert.length > 0) {
    const rows = toInsert.map((i) => jobs[i]!);
    const { rows: inserted } = await client.query<InsertedIds>(INSERT_JOBS, insertParams(rows, now, options));
    // Keyed rows are matched by key. Unkeyed rows cannot conflict, so every one
    // was inserted, in `ord` order, and identity values rise in insertion order.
    const byKey = new Map<string, InsertedIds>();
    const unkeyed: InsertedIds[] = [];
    for (const row of inserted) {
      if (row.idempotency_key === null) unkeyed.push(row);
      else byKey.set(keyOf(row.handler, row.idempotency_key), row);
    }
    unkeyed.sort((a, b) => a.id - b.id);
    let next = 0;
    const lostRace: number[] = [];
    for (const i of toInsert) {
      const job = jobs[i]!;
      const row = job.idempotencyKey == null ? unkeyed[next++] : byKey.get(keyOf(job.handler, job.idempotencyKey));
      if (!row) {
        lostRace.push(i);
        continue;
      }
      const raw = insertedRawJob(job, row.id, row.fair_tag, now);
      results[i] = { raw, created: true };
      effects.created.set(raw.queue, (effects.created.get(raw.queue) ?? 0) + 1);
      if (raw.state === 'queued') effects.woken.add(raw.queue, raw.handler);
    }
    if (lostRace.length > 0) {
      // Another transaction committed the same key between our read and our insert.
      const winners = await jobsByKeys(client, lostRace.map((i) => jobs[i]!));
      for (const i of lostRace) {
        const job = jobs[i]!;
        const raw = winners.get(keyOf(job.handler, job.idempotencyKey!));
        if (!raw) throw new Error(`job with idempotency key ${job.idempotencyKey} vanished during insert`);
        results[i] = { raw, created: false };
      }
    }
  }
  for (const [i, first] of duplicateOf) results[i] = { raw: results[first]!.raw, created: false };
  return results as InsertedJob[];
}

async function jobsByKeys(client: pg.PoolClient, jobs: readonly NewJob[]): Promise<Map<string, RawJob>> {
  const { rows } = await client.query<RawJob>(JOBS_BY_KEYS, [arrayParam(jobs.map((j) => j.handler)), arrayParam(jobs.map((j) => j.idempotencyKey))]);
  return new Map(rows.map((raw) => [keyOf(raw.handler, raw.idempotency_key!), raw]));
}

/**
 * Add the transaction's new jobs to the queue depth counters, refuse with
 * `QueueFullError` (rolling everything back) when a limited queue would exceed
 * its maximum, and notify other nodes of due work on commit.
 */
export async function finishIntake(
  client: pg.PoolClient,
  effects: IntakeEffects,
  options: EnqueueOptions | undefined,
  notify: { channel: string; instanceId: string },
): Promise<void> {
  if (effects.created.size === 0 && effects.resumed.size === 0) return;
  const queues = [...new Set([...effects.created.keys(), ...effects.resumed.keys()])];
  const payload = effects.woken.empty ? '' : notifyPayload(notify.instanceId, effects.woken);
  const { rows } = await client.query<{ queue: string; depth: number }>(ADD_DEPTH, [
    queues,
    queues.map((q) => (effects.created.get(q) ?? 0) + (effects.resumed.get(q) ?? 0)),
    notify.channel,
    payload,
  ]);
  for (const { queue, depth } of rows) {
    const limit = options?.queueLimits?.get(queue);
    // Only new jobs are refused: a woken job is never refused (it was accepted long ago).
    if (limit && effects.created.has(queue) && depth - (effects.resumed.get(queue) ?? 0) > limit.maxDepth) {
      throw new QueueFullError(queue, limit.maxDepth);
    }
  }
}
