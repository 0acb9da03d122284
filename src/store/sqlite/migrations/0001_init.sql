-- 0001: the initial schema. Times are integer milliseconds since the epoch
-- (from the engine's injected clock, never from SQLite); JSON values are TEXT.

CREATE TABLE IF NOT EXISTS schema_migrations (
  version    INTEGER PRIMARY KEY,
  name       TEXT    NOT NULL,
  applied_at INTEGER NOT NULL
);

CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE events (
  id          TEXT    PRIMARY KEY,
  name        TEXT    NOT NULL,
  data        TEXT    NOT NULL,
  tenant      TEXT,
  received_at INTEGER NOT NULL
);

-- Pruning looks for old events; the NOT EXISTS check uses jobs_event.
CREATE INDEX events_received ON events (received_at);

CREATE TABLE jobs (
  -- AUTOINCREMENT: ids are never reused after pruning, so a stale id held by an
  -- operator or a remote worker can never name a different job.
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  handler           TEXT    NOT NULL,
  queue             TEXT    NOT NULL,
  state             TEXT    NOT NULL CHECK (state IN ('scheduled', 'queued', 'running', 'succeeded', 'dead', 'cancelled')),
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
  -- goes down (release gives an attempt back, retry resets the budget), so an
  -- attempt row is never overwritten.
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
  finished_at       INTEGER
);

-- Lease order: highest priority first, then earliest run_at, then id. Partial,
-- so the index holds only the (usually small) set of due jobs.
CREATE INDEX jobs_queued ON jobs (priority DESC, run_at, id) WHERE state = 'queued';
-- stageDue and the next-due lookup.
CREATE INDEX jobs_scheduled ON jobs (run_at) WHERE state = 'scheduled';
-- The reaper.
CREATE INDEX jobs_running_lease ON jobs (lease_expires_at) WHERE state = 'running';
-- Concurrency-key counting at lease time.
CREATE INDEX jobs_running_concurrency ON jobs (concurrency_key) WHERE state = 'running' AND concurrency_key IS NOT NULL;
-- Job idempotency: one job per (handler, key).
CREATE UNIQUE INDEX jobs_idempotency ON jobs (handler, idempotency_key) WHERE idempotency_key IS NOT NULL;
-- Pruning of finished jobs, oldest first. Keyed by state because dead jobs
-- have their own retention; only terminal jobs carry finished_at.
CREATE INDEX jobs_finished ON jobs (state, finished_at) WHERE finished_at IS NOT NULL;
-- An event's jobs (ingest replay, pruning's NOT EXISTS, listJobs by event).
CREATE INDEX jobs_event ON jobs (event_id) WHERE event_id IS NOT NULL;

CREATE TABLE attempts (
  job_id     INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  attempt    INTEGER NOT NULL,
  worker_id  TEXT    NOT NULL,
  started_at INTEGER NOT NULL,
  ended_at   INTEGER,
  outcome    TEXT    NOT NULL CHECK (outcome IN ('running', 'succeeded', 'failed', 'timed_out', 'lease_expired', 'crashed', 'released', 'cancelled')),
  error      TEXT,
  PRIMARY KEY (job_id, attempt)
) WITHOUT ROWID;

CREATE TABLE api_keys (
  id         TEXT    PRIMARY KEY,
  name       TEXT    NOT NULL,
  hash       TEXT    NOT NULL UNIQUE,
  scopes     TEXT    NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER,
  revoked_at INTEGER
);
