-- 0006: durable execution (docs/durable-execution.md): job state
-- `suspended`, attempt outcome `suspended`, a job's finished steps, and the
-- waits of suspended jobs.
--
-- SQLite cannot change a CHECK constraint in place, so `jobs` and `attempts`
-- are rebuilt (the documented create-copy-drop-rename procedure). It runs in
-- the migrator's transaction with foreign keys on, where PRAGMA foreign_keys
-- cannot be switched off; the order below keeps the cascade from `jobs` to
-- `attempts` from firing: the new `attempts` refers to the new `jobs`, and the
-- old `attempts` is dropped before the old `jobs` (whose implicit DELETE would
-- otherwise cascade). RENAME rewrites the reference to the final name.

CREATE TABLE jobs_new (
  -- AUTOINCREMENT: ids are never reused after pruning, so a stale id held by an
  -- operator or a remote worker can never name a different job.
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  handler           TEXT    NOT NULL,
  queue             TEXT    NOT NULL,
  -- suspended: a durable step waits (sleep, event, interrupt); run_at holds its wake time when it has one.
  state             TEXT    NOT NULL CHECK (state IN ('scheduled', 'queued', 'running', 'suspended', 'succeeded', 'dead', 'cancelled')),
  payload           TEXT    NOT NULL,
  -- No foreign key to events: jobs may be enqueued with an event id directly,
  -- and pruning deletes an event only when no job refers to it.
  event_id          TEXT,
  priority          INTEGER NOT NULL DEFAULT 0,
  run_at            INTEGER NOT NULL,
  attempts          INTEGER NOT NULL DEFAULT 0,
  max_attempts      INTEGER NOT NULL,
  crashes           INTEGER NOT NULL DEFAULT 0,
  -- Leases ever taken; numbers the attempts rows. Unlike `attempts` it never
  -- goes down (release and suspend give an attempt back, retry resets the
  -- budget), so an attempt row is never overwritten.
  lease_seq         INTEGER NOT NULL DEFAULT 0,
  idempotency_key   TEXT,
  concurrency_key   TEXT,
  concurrency_limit INTEGER,
  lease_token       TEXT,
  lease_expires_at  INTEGER,
  worker_id         TEXT,
  last_error        TEXT,
  dead_reason       TEXT CHECK (dead_reason IN ('exhausted', 'non_retryable', 'poison', 'unknown_handler')),
  result            TEXT,
  traceparent       TEXT,
  created_at        INTEGER NOT NULL,
  updated_at        INTEGER NOT NULL,
  finished_at       INTEGER,
  lease_key_id      TEXT,
  started_seq       INTEGER NOT NULL DEFAULT 0
);

INSERT INTO jobs_new (id, handler, queue, state, payload, event_id, priority, run_at, attempts, max_attempts, crashes,
                      lease_seq, idempotency_key, concurrency_key, concurrency_limit, lease_token, lease_expires_at,
                      worker_id, last_error, dead_reason, result, traceparent, created_at, updated_at, finished_at,
                      lease_key_id, started_seq)
SELECT id, handler, queue, state, payload, event_id, priority, run_at, attempts, max_attempts, crashes,
       lease_seq, idempotency_key, concurrency_key, concurrency_limit, lease_token, lease_expires_at,
       worker_id, last_error, dead_reason, result, traceparent, created_at, updated_at, finished_at,
       lease_key_id, started_seq
FROM jobs;

-- Keep the id high-water mark (ids of pruned jobs are never reused).
DELETE FROM sqlite_sequence WHERE name = 'jobs_new';
INSERT INTO sqlite_sequence (name, seq) SELECT 'jobs_new', seq FROM sqlite_sequence WHERE name = 'jobs';

CREATE TABLE attempts_new (
  job_id     INTEGER NOT NULL REFERENCES jobs_new (id) ON DELETE CASCADE,
  attempt    INTEGER NOT NULL,
  worker_id  TEXT    NOT NULL,
  started_at INTEGER NOT NULL,
  ended_at   INTEGER,
  outcome    TEXT    NOT NULL CHECK (outcome IN ('running', 'succeeded', 'failed', 'timed_out', 'lease_expired', 'crashed', 'released', 'suspended', 'cancelled')),
  error      TEXT,
  PRIMARY KEY (job_id, attempt)
) WITHOUT ROWID;

INSERT INTO attempts_new (job_id, attempt, worker_id, started_at, ended_at, outcome, error)
SELECT job_id, attempt, worker_id, started_at, ended_at, outcome, error FROM attempts;

DROP TABLE attempts;
DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;
ALTER TABLE attempts_new RENAME TO attempts;

CREATE INDEX jobs_queued_by_handler ON jobs (handler, priority DESC, run_at, id) WHERE state = 'queued';
CREATE INDEX jobs_scheduled ON jobs (run_at) WHERE state = 'scheduled';
CREATE INDEX jobs_running_lease ON jobs (lease_expires_at) WHERE state = 'running';
CREATE INDEX jobs_running_concurrency ON jobs (concurrency_key) WHERE state = 'running' AND concurrency_key IS NOT NULL;
CREATE UNIQUE INDEX jobs_idempotency ON jobs (handler, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_finished ON jobs (state, finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX jobs_event ON jobs (event_id) WHERE event_id IS NOT NULL;

-- A job's finished steps. Results live here, not in the hot `jobs` row; a
-- rowid table because results may be large (WITHOUT ROWID suits small rows).
CREATE TABLE steps (
  job_id       INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  name         TEXT    NOT NULL,
  seq          INTEGER NOT NULL,
  kind         TEXT    NOT NULL CHECK (kind IN ('run', 'sleep', 'event', 'interrupt')),
  -- The lease (attempts.attempt) that finished it.
  attempt      INTEGER NOT NULL,
  started_at   INTEGER NOT NULL,
  finished_at  INTEGER NOT NULL,
  result       TEXT    NOT NULL,
  result_bytes INTEGER NOT NULL,
  timed_out    INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (job_id, name)
);
CREATE UNIQUE INDEX steps_seq ON steps (job_id, seq);

-- The wait of a suspended job (one per suspension; resolved, timed-out and
-- cancelled ones stay as history until their job is pruned). Ids are
-- `wt_` + creation time (hex) + 128 random bits: unguessable, and their order
-- is creation order, so keyset pages by id read newest first.
CREATE TABLE waits (
  id          TEXT    PRIMARY KEY,
  job_id      INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  handler     TEXT    NOT NULL,
  tenant      TEXT,
  step        TEXT    NOT NULL,
  seq         INTEGER NOT NULL,
  kind        TEXT    NOT NULL CHECK (kind IN ('sleep', 'event', 'interrupt')),
  state       TEXT    NOT NULL CHECK (state IN ('pending', 'resolved', 'timed_out', 'cancelled')),
  created_at  INTEGER NOT NULL,
  -- When the step began (an event wait's look-back starts here).
  started_at  INTEGER NOT NULL,
  wake_at     INTEGER,
  events      TEXT,
  match       TEXT,
  prompt      TEXT,
  schema      TEXT,
  resolved_at INTEGER,
  resolved_by TEXT
);
-- Cascade on prune, and "one pending wait per job" (also pendingWait's lookup).
CREATE INDEX waits_job ON waits (job_id);
CREATE UNIQUE INDEX waits_one_pending ON waits (job_id) WHERE state = 'pending';
-- stageDue's wake scan and the next wake time.
CREATE INDEX waits_wake ON waits (wake_at) WHERE state = 'pending' AND wake_at IS NOT NULL;
-- listWaits and pendingInterrupts (newest first by id within kind and state).
CREATE INDEX waits_kind_state ON waits (kind, state, id);
CREATE INDEX waits_state ON waits (state, id);

-- The event names pending waits listen for, one row per (name, wait), only
-- while the wait is pending: ingest looks its event's name up here, one index
-- probe that finds nothing when nobody waits (the hot path's cost).
CREATE TABLE wait_events (
  event_name TEXT NOT NULL,
  wait_id    TEXT NOT NULL REFERENCES waits (id) ON DELETE CASCADE,
  PRIMARY KEY (event_name, wait_id)
) WITHOUT ROWID;
CREATE INDEX wait_events_wait ON wait_events (wait_id);

-- The look-back at suspend: events of a name accepted since the step began.
CREATE INDEX events_name_received ON events (name, received_at);
