/**
 * The PostgreSQL engine's smaller statements: fenced heartbeat, operator
 * actions, staging, pruning, reads, keys, metadata and the node registry.
 * The hot path has its own files (lease, settle-batch, intake, reclaim).
 */
import { assertPayloadPath } from '../../core/payload-filter.js';
import type { JobFilter } from '../engine.js';

export const HEARTBEAT = `
  UPDATE jobs SET lease_expires_at = $3, updated_at = $4
  WHERE id = $1 AND lease_token = $2 AND state = 'running'
  RETURNING *`;

export const JOB_BY_ID = 'SELECT * FROM jobs WHERE id = $1';
export const JOB_EXISTS = 'SELECT 1 FROM jobs WHERE id = $1';

/**
 * The running attempt is the job row itself; finished ones are rows in
 * `attempts`, except the one that left a job succeeded: the completion writes
 * no row for it (settle-batch.ts), as the job row holds all it would (lease
 * number, worker, lease time, finish). A job completed before that change
 * has its row, and the NOT EXISTS keeps it from showing twice.
 */
export const ATTEMPTS_BY_JOB = `
  SELECT job_id, attempt, worker_id, started_at, ended_at, outcome, error FROM attempts WHERE job_id = $1
  UNION ALL
  SELECT id, lease_seq, coalesce(worker_id, ''), coalesce(leased_at, updated_at), NULL, 'running', NULL
  FROM jobs WHERE id = $1 AND state = 'running'
  UNION ALL
  SELECT id, lease_seq, coalesce(worker_id, ''), coalesce(leased_at, finished_at), finished_at, 'succeeded', NULL
  FROM jobs j WHERE id = $1 AND state = 'succeeded' AND lease_seq > 0
    AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.job_id = j.id AND a.attempt = j.lease_seq)
  ORDER BY attempt`;

export const EVENT_BY_ID = 'SELECT * FROM events WHERE id = $1';

/**
 * A weight change reaches the jobs already waiting (JobStore.restampJobs):
 * one window of ids per call, so a large backlog is rewritten in short
 * transactions. $1 queues, $2 their stamps, $3 the id to continue after
 * (null: just before the oldest waiting job), $4 the window's width, $5
 * whether each queue keeps its turns (false: no longer fair, turns cleared).
 */
export const RESTAMP_JOBS = `
  WITH bounds AS (
    SELECT coalesce($3::bigint, least((SELECT min(id) FROM jobs WHERE state = 'queued'), (SELECT min(id) FROM jobs WHERE state = 'scheduled')) - 1) AS after,
           (SELECT max(id) FROM jobs) AS newest
  ), up AS (
    UPDATE jobs j SET priority_ms = s.priority_ms, fair_tag = CASE WHEN s.keep_turns THEN j.fair_tag ELSE 0 END
    FROM bounds b, unnest($1::text[], $2::bigint[], $5::boolean[]) AS s(queue, priority_ms, keep_turns)
    WHERE j.id > b.after AND j.id <= b.after + $4 AND j.queue = s.queue
      AND j.state IN ('queued', 'scheduled') AND (j.priority_ms <> s.priority_ms OR (NOT s.keep_turns AND j.fair_tag > 0))
    RETURNING 1
  )
  SELECT (SELECT count(*) FROM up)::int AS restamped, b.after, b.newest FROM bounds b`;

/** $1 now, $2 limit. `next_wake`: the earliest wake time of a suspended job (durable.ts wakes them). Staged rows are excluded from the next-due lookup, which reads the statement's snapshot. */
export const STAGE_DUE = `
  WITH staged AS (
    UPDATE jobs SET state = 'queued', updated_at = $1
    WHERE id IN (
      SELECT id FROM jobs WHERE state = 'scheduled' AND run_at <= $1
      ORDER BY run_at LIMIT $2 FOR UPDATE SKIP LOCKED)
    RETURNING id, queue, handler
  )
  SELECT (SELECT count(*) FROM staged) AS staged,
         (SELECT array_agg(DISTINCT queue) FROM staged) AS queues,
         (SELECT array_agg(DISTINCT handler) FROM staged) AS handlers,
         (SELECT min(run_at) FROM jobs WHERE state = 'scheduled' AND id NOT IN (SELECT id FROM staged)) AS next_due,
         (SELECT min(wake_at) FROM waits WHERE state = 'pending' AND wake_at IS NOT NULL) AS next_wake`;

export const LOCK_JOB = 'SELECT * FROM jobs WHERE id = $1 FOR UPDATE';

export const CANCEL = `
  UPDATE jobs SET state = 'cancelled', finished_at = $2, updated_at = $2, lease_token = NULL, lease_expires_at = NULL
  WHERE id = $1 AND state IN ('scheduled', 'queued', 'running', 'suspended')
  RETURNING *`;

export const RETRY = `
  UPDATE jobs SET state = 'queued', attempts = 0, crashes = 0, dead_reason = NULL, finished_at = NULL,
    result = NULL, run_at = $2, updated_at = $2
  WHERE id = $1 AND state IN ('dead', 'cancelled')
  RETURNING *`;

export const END_ATTEMPT = `
  INSERT INTO attempts (job_id, attempt, worker_id, started_at, ended_at, outcome, error)
  VALUES ($1, $2, $3, $4, $5, $6, NULL)`;

/** $1 queue, $2 'added' or 'finished'. */
export const COUNT_ONE = `
  INSERT INTO queue_counts (queue, kind, n) VALUES ($1, $2, 1)
  ON CONFLICT (queue, kind) DO UPDATE SET n = queue_counts.n + 1`;

/**
 * $1 states, $2 cutoff, $3 limit. Attempts, steps and waits go with their
 * jobs (there is no foreign key to cascade); a finished job has no pending
 * wait, so no wait_events rows.
 */
export const PRUNE_JOBS = `
  WITH gone AS (
    DELETE FROM jobs WHERE id IN (
      SELECT id FROM jobs WHERE state = ANY($1::text[]) AND finished_at < $2 LIMIT $3)
    RETURNING id
  ), attempts_gone AS (
    DELETE FROM attempts WHERE job_id IN (SELECT id FROM gone)
  ), steps_gone AS (
    DELETE FROM steps WHERE job_id IN (SELECT id FROM gone)
  ), waits_gone AS (
    DELETE FROM waits WHERE job_id IN (SELECT id FROM gone)
  )
  SELECT count(*) AS n FROM gone`;

export const PRUNE_EVENTS = `
  DELETE FROM events WHERE id IN (
    SELECT e.id FROM events e
    WHERE e.received_at < $1 AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.event_id = e.id)
    LIMIT $2)`;

export const COUNTS_BY_QUEUE = 'SELECT queue, state, count(*) AS n FROM jobs GROUP BY queue, state';
export const OLDEST_QUEUED = "SELECT queue, min(run_at) AS oldest FROM jobs WHERE state = 'queued' GROUP BY queue";

/** $1 handler names: those with a queued job. One probe of jobs_lease_order (handler first, state = 'queued') per name; stops at the first row. */
export const HANDLERS_WITH_QUEUED_JOBS = `
  SELECT h.handler FROM unnest($1::text[]) AS h(handler)
  WHERE EXISTS (SELECT 1 FROM jobs j WHERE j.handler = h.handler AND j.state = 'queued')`;

export const INSERT_KEY = `
  INSERT INTO api_keys (id, name, hash, scopes, handlers, created_at, expires_at, revoked_at)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`;
export const KEY_BY_HASH = 'SELECT * FROM api_keys WHERE hash = $1';
export const LIST_KEYS = 'SELECT * FROM api_keys ORDER BY created_at, id';
export const REVOKE_KEY = 'UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL';

export const GET_META = 'SELECT value FROM meta WHERE key = $1';
export const SET_META = 'INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value';
/** Serialises read-modify-writes of one meta key across nodes (two-key form: its own lock space). */
export const LOCK_META_KEY = "SELECT pg_advisory_xact_lock(hashtext('drover.meta'), hashtext(current_schema() || '.' || $1))";

export const REGISTER_NODE = `
  INSERT INTO nodes (node_id, incarnation, started_at, heartbeat_at) VALUES ($1, $2, $3, $3)
  ON CONFLICT (node_id) DO UPDATE SET incarnation = excluded.incarnation, started_at = excluded.started_at,
    heartbeat_at = excluded.heartbeat_at`;

/** One small write per node per interval. `current` tells "declared dead" (null) from "superseded". */
export const HEARTBEAT_NODE = `
  WITH beat AS (
    UPDATE nodes SET heartbeat_at = $3 WHERE node_id = $1 AND incarnation = $2 RETURNING 1
  )
  SELECT (SELECT count(*) FROM beat) AS beat, (SELECT incarnation FROM nodes WHERE node_id = $1) AS current`;

export const DEREGISTER_NODE = 'DELETE FROM nodes WHERE node_id = $1 AND incarnation = $2';
export const LIST_NODES = 'SELECT * FROM nodes ORDER BY node_id';

/** Each of the schema's tables with its indexes and TOAST (a catalog lookup, no table scan). */
export const TABLE_SIZES = `
  SELECT c.relname AS table_name, pg_total_relation_size(c.oid)::float8 AS bytes
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
  ORDER BY c.relname`;

/** Whether a payload search index exists in this schema, and is valid (a failed CONCURRENTLY build leaves it invalid). */
export const PAYLOAD_INDEX_STATE = `
  SELECT i.indisvalid AS valid FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid
  WHERE c.relname = $1 AND c.relnamespace = current_schema()::regnamespace`;

/** listJobs: filters as parameters, newest first, keyset cursor on id. */
export function listJobsQuery(filter: JobFilter, beforeId: number | null): { text: string; values: unknown[] } {
  return keysetQuery(
    'jobs',
    { state: filter.state, handler: filter.handler, queue: filter.queue, event_id: filter.eventId },
    beforeId,
    filter.limit,
    (add) => {
      if (filter.createdAfter !== undefined) add('created_at >=', filter.createdAfter);
      if (filter.createdBefore !== undefined) add('created_at <', filter.createdBefore);
      for (const { path, value } of filter.payload ?? []) {
        // The path is a literal (segments checked by assertPayloadPath) so that an expression index on
        // (payload #>> '{<path>}') matches; #>> gives a number's text as JSON writes it.
        assertPayloadPath(path);
        add(`(payload #>> '{${path.join(',')}}') =`, value);
      }
    },
  );
}

/**
 * `SELECT * FROM table` with equality filters (undefined: no filter) as
 * parameters, newest first by id, keyset cursor `id < before`.
 */
export function keysetQuery(
  table: string,
  equals: Record<string, unknown>,
  before: unknown,
  limit: number,
  /** Further conditions: `add('created_at >=', value)` appends `created_at >= $n`. */
  more: (add: (condition: string, value: unknown) => void) => void = () => undefined,
): { text: string; values: unknown[] } {
  const where: string[] = [];
  const values: unknown[] = [];
  const add = (column: string, value: unknown) => {
    values.push(value);
    where.push(`${column} $${values.length}`);
  };
  for (const [column, value] of Object.entries(equals)) if (value !== undefined) add(`${column} =`, value);
  more(add);
  if (before !== null && before !== undefined) add('id <', before);
  values.push(Math.max(0, Math.floor(limit)));
  return {
    text: `SELECT * FROM ${table} ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT $${values.length}`,
    values,
  };
}
