/**
 * The PostgreSQL side of `JobReads`: jobs, attempts, events and queue depth,
 * read on the engine's general pool, plus the payload search indexes that
 * serve `listJobs` filters. Nothing here changes a job.
 */
import type pg from 'pg';
import { payloadIndexName } from '../../core/payload-filter.js';
import type { AttemptRow, EventRow, JobRow } from '../../core/types.js';
import type { JobFilter, QueueStats } from '../engine.js';
import { longQuery, storeError, type Query } from './connection.js';
import * as q from './queries.js';
import { parseJobId, toAttemptRow, toEventRow, toJobRow, toQueueStats, type RawAttempt, type RawEvent, type RawJob } from './rows.js';

export async function getJob(query: Query, id: string): Promise<JobRow | null> {
  const n = parseJobId(id);
  if (n === null) return null;
  const raw = (await query<RawJob>(q.JOB_BY_ID, [n]))[0];
  return raw ? toJobRow(raw) : null;
}

export async function getAttempts(query: Query, jobId: string): Promise<AttemptRow[]> {
  const n = parseJobId(jobId);
  return n === null ? [] : (await query<RawAttempt>(q.ATTEMPTS_BY_JOB, [n])).map(toAttemptRow);
}

export async function listJobs(query: Query, filter: JobFilter): Promise<JobRow[]> {
  let before: number | null = null;
  if (filter.before !== undefined) {
    before = parseJobId(filter.before);
    if (before === null) return []; // no job id sorts below a malformed cursor
  }
  const { text, values } = q.listJobsQuery(filter, before);
  return (await query<RawJob>(text, values)).map(toJobRow);
}

export async function getEvent(query: Query, id: string): Promise<EventRow | null> {
  const raw = (await query<RawEvent>(q.EVENT_BY_ID, [id]))[0];
  return raw ? toEventRow(raw) : null;
}

export async function queueStats(query: Query): Promise<QueueStats[]> {
  const [counts, oldest] = await Promise.all([
    query<{ queue: string; state: string; n: number }>(q.COUNTS_BY_QUEUE, []),
    query<{ queue: string; oldest: number }>(q.OLDEST_QUEUED, []),
  ]);
  return toQueueStats(counts, oldest);
}

/** Builds the missing payload indexes one at a time, each on its own pooled session; resolves to the names built. */
export async function ensurePayloadIndexes(pool: pg.Pool, paths: ReadonlyArray<readonly string[]>): Promise<string[]> {
  const built: string[] = [];
  for (const path of paths) {
    const name = payloadIndexName(path); // checks the path: its segments go into the SQL as a literal
    const client = await pool.connect();
    try {
      const state = (await client.query<{ valid: boolean }>(q.PAYLOAD_INDEX_STATE, [name])).rows[0];
      if (state?.valid) continue;
      // Building over a large table outlasts a store call's deadline; CONCURRENTLY keeps intake
      // writing meanwhile (so it cannot run in a transaction). A build that failed half-way leaves an
      // invalid index, which IF NOT EXISTS would keep forever: drop it first.
      await client.query('SET statement_timeout = 0');
      if (state) await client.query(longQuery(`DROP INDEX CONCURRENTLY IF EXISTS ${name}`));
      await client.query(longQuery(`CREATE INDEX CONCURRENTLY IF NOT EXISTS ${name} ON jobs ((payload #>> '{${path.join(',')}}'))`));
      // Statistics on the new expression: without them the planner guesses a common value and may
      // walk the primary key newest first instead (the LIMIT trap), which is the slow path.
      await client.query(longQuery('ANALYZE jobs'));
      built.push(name);
    } catch (error) {
      // Another node building the same index at the same moment: it is (being) built.
      const code = (error as { code?: string }).code;
      if (code !== '42P07' && code !== '23505') throw storeError(error, 'building a payload search index');
    } finally {
      await client.query('RESET statement_timeout').catch(() => undefined);
      client.release();
    }
  }
  return built;
}
