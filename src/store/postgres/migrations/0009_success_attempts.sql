-- 0009: a completion no longer writes an `attempts` row for the attempt that
-- left its job succeeded: the job row keeps all that row held (lease_seq,
-- worker_id, leased_at, finished_at) and getAttempts reads it from there, as
-- it reads the running attempt (docs/benchmarks.md, sixth pass: one heap and
-- one index insert fewer per job). Nothing to rewrite: rows written before
-- stay, and the read shows each attempt once either way. The version is the
-- point: a Drover from before this change would show such a job without its
-- last attempt, so it now refuses this schema (and restores of its backups).
COMMENT ON TABLE attempts IS 'Finished attempts, except the one that completed a job: that one is read from the jobs row.';
