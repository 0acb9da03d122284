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
import { DEPTH_OF, INSERT_JOBS, plainStatementFor } from './intake-sql.js';
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
 * intake-sql.ts plainStatement), and answer their rows in input order. Throws
 * `QueueFullError`, having written nothing, when a limited queue would
 * overflow.
 */
export async function enqueuePlain(
  db: pg.Pool,
  jobs: readonly NewJob[],
  now: number,
  options: EnqueueOptions | undefined,
  notify: { channel: string; instanceId: string },
  /** The statement failed for a connection reason with jobs to lease: it may have committed them leased, until `until` (undo by `lease_call`). */
  uncertain?: (call: string, workerId: string, until: number) => void,
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
  // In plainStatement's placeholder order (intake-sql.ts).
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
    if (call !== null && isTransient(error)) uncertain?.(call, lease!.workerId, Math.max(...leaseUntil.map((at) => at ?? 0)));
    throw error;
  }
}

const JOBS_BY_KEYS = `
  SELECT j.* FROM jobs j
  JOIN unnest($1::text[], $2::text[]) AS k(handler, idempotency_key)
    ON j.handler = k.handler AND j.idempotency_key = k.idempotency_key`;

const ADD_DEPTH = `
  WITH up AS (
    INSERT INTO queue_counts (queue, kind, n)
    SELECT queue, 'added', n FROM unnest($1::text[], $2::bigint[]) AS t(queue, n) ORDER BY queue
    ON CONFLICT (queue, kind) DO UPDATE SET n = queue_counts.n + excluded.n
    RETURNING queue, n
  )
  SELECT queue, ${DEPTH_OF('up')} AS depth, (SELECT count(*) FROM (SELECT pg_notify($3, $4) WHERE $4 <> '') AS n) AS notified FROM up`;

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
