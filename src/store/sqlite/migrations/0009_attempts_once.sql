-- 0009: each attempt row is written once, whole, when its attempt ends (as on
-- PostgreSQL): a lease used to insert a 'running' row and its end to update
-- it, two writes per job on the hot path. The running attempt now lives on the
-- job row: `leased_at` (new) is when the current (or last) lease was taken,
-- beside `worker_id` and `lease_seq`; getAttempts shows it from there.
-- `attempts` holds finished attempts only ('running' stays allowed by the
-- CHECK, which SQLite cannot change in place; nothing writes it any more).
ALTER TABLE jobs ADD COLUMN leased_at INTEGER;

-- Jobs running at upgrade: their attempt's start moves to the job row and its
-- 'running' row goes, so that the attempt's end (completion, failure,
-- release, reclaim, cancel, suspend) inserts its one finished row. Matched by
-- (job, lease_seq), not by outcome: a row left there would make that insert
-- fail on the primary key, and the job could never settle.
UPDATE jobs SET leased_at = (
  SELECT a.started_at FROM attempts a WHERE a.job_id = jobs.id AND a.attempt = jobs.lease_seq
) WHERE state = 'running';
DELETE FROM attempts WHERE (job_id, attempt) IN (SELECT id, lease_seq FROM jobs WHERE state = 'running');
