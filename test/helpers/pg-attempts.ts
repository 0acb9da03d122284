/**
 * SQL over a PostgreSQL store's attempts for tests that check them directly.
 * A success writes no attempt row there: the job row holds that attempt
 * (settle-batch.ts, migration 0009), and every other end of an attempt writes
 * one. `schema` is a schema name, or `$schema` for helpers that fill it in.
 */

/** Every finished attempt as `a` (job_id, attempt, worker_id, started_at, ended_at, outcome), successes read from the jobs as getAttempts reads them. */
export function finishedAttempts(schema: string): string {
  return `(
    SELECT job_id, attempt, worker_id, started_at, ended_at, outcome FROM ${schema}.attempts
    UNION ALL
    SELECT id, lease_seq, coalesce(worker_id, ''), coalesce(leased_at, finished_at), finished_at, 'succeeded' FROM ${schema}.jobs j
    WHERE state = 'succeeded' AND lease_seq > 0
      AND NOT EXISTS (SELECT 1 FROM ${schema}.attempts x WHERE x.job_id = j.id AND x.attempt = j.lease_seq)
  ) AS a`;
}

/**
 * Ids (`job_id`) of jobs that may have completed more than once: a job's leases
 * before its last must each have ended with a row that is not a success, and
 * none may have a row from its last lease on. A job that succeeded, was leased
 * again and succeeded again leaves a gap (its first success wrote no row).
 */
export function completedTwice(schema: string): string {
  return `SELECT j.id AS job_id FROM ${schema}.jobs j
    WHERE j.state = 'succeeded' AND (
      (SELECT count(*) FROM ${schema}.attempts a WHERE a.job_id = j.id AND a.attempt < j.lease_seq AND a.outcome <> 'succeeded') <> j.lease_seq - 1
      OR EXISTS (SELECT 1 FROM ${schema}.attempts a WHERE a.job_id = j.id AND (a.outcome = 'succeeded' OR a.attempt >= j.lease_seq)))`;
}
