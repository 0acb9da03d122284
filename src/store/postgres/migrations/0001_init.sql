-- 0001: the initial schema. The migrator runs this inside the target schema
-- (search_path is set per connection), so names are unqualified.
--
-- Times are bigint milliseconds since the epoch from the engine's injected
-- clock, never now(): every node and the SQLite engine agree on one time
-- source. JSON values are `json` (kept as sent, parsed by the driver): jsonb
-- would re-parse every payload on the hot path for no query we run.

CREATE TABLE IF NOT EXISTS schema_migrations (
  version    integer PRIMARY KEY,
  name       text    NOT NULL,
  applied_at bigint  NOT NULL
);

CREATE TABLE meta (
  key   text PRIMARY KEY,
  value text NOT NULL
);

CREATE TABLE events (
  id          text   PRIMARY KEY,
  name        text   NOT NULL,
  data        json   NOT NULL,
  tenant      text,
  received_at bigint NOT NULL
);

-- Pruning looks for old events; the NOT EXISTS check uses jobs_event.
CREATE INDEX events_received ON events (received_at);

CREATE TABLE jobs (
  -- An identity never hands out an id twice (also after pruning), so a stale id
  -- held by an operator or a remote worker can never name a different job.
  id                bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  handler           text    NOT NULL,
  queue             text    NOT NULL,
  state             text    NOT NULL CHECK (state IN ('scheduled', 'queued', 'running', 'succeeded', 'dead', 'cancelled')),
  payload           json    NOT NULL,
  -- No foreign key to events: jobs may be enqueued with an event id directly,
  -- and pruning deletes an event only when no job refers to it.
  event_id          text,
  priority          integer NOT NULL DEFAULT 0,
  run_at            bigint  NOT NULL,
  attempts          integer NOT NULL DEFAULT 0,
  max_attempts      integer NOT NULL,
  crashes           integer NOT NULL DEFAULT 0,
  -- Leases ever taken; numbers the attempts rows and never goes down.
  lease_seq         integer NOT NULL DEFAULT 0,
  idempotency_key   text,
  concurrency_key   text,
  concurrency_limit integer,
  lease_token       text,
  lease_expires_at  bigint,
  worker_id         text,
  -- Start of the current (or last) attempt. The running attempt lives on the
  -- job row; its attempts row is written once, when it ends.
  leased_at         bigint,
  last_error        text,
  dead_reason       text CHECK (dead_reason IN ('exhausted', 'non_retryable', 'poison', 'unknown_handler')),
  result            json,
  traceparent       text,
  created_at        bigint  NOT NULL,
  updated_at        bigint  NOT NULL,
  finished_at       bigint
);

-- Every state change writes a new row version into every index whose predicate
-- it matches, so the indexes are partial and few: they are the hot path's cost.

-- Lease order per handler (lease scans one handler at a time, LATERAL).
CREATE INDEX jobs_queued ON jobs (handler, priority DESC, run_at, id) WHERE state = 'queued';
-- "Are keyed jobs waiting?": decides between the one-statement lease and the
-- locking one. Usually empty.
CREATE INDEX jobs_queued_keyed ON jobs (handler) WHERE state = 'queued' AND concurrency_key IS NOT NULL;
-- stageDue and the next-due lookup.
CREATE INDEX jobs_scheduled ON jobs (run_at) WHERE state = 'scheduled';
-- The reaper; reclaiming a worker's or a dead node's jobs scans it too (the
-- running set is small: the cluster's total concurrency).
CREATE INDEX jobs_running_lease ON jobs (lease_expires_at) WHERE state = 'running';
-- Concurrency-key counting at lease time.
CREATE INDEX jobs_running_concurrency ON jobs (concurrency_key) WHERE state = 'running' AND concurrency_key IS NOT NULL;
-- Job idempotency: one job per (handler, key).
CREATE UNIQUE INDEX jobs_idempotency ON jobs (handler, idempotency_key) WHERE idempotency_key IS NOT NULL;
-- Pruning of finished jobs, oldest first, per retention class.
CREATE INDEX jobs_finished ON jobs (state, finished_at) WHERE finished_at IS NOT NULL;
-- An event's jobs (ingest replay, pruning's NOT EXISTS, listJobs by event).
CREATE INDEX jobs_event ON jobs (event_id) WHERE event_id IS NOT NULL;

-- Finished attempts only (see jobs.leased_at). No foreign key: the check would
-- cost a lookup and a row lock per completion; pruning deletes attempts with
-- their jobs in the same statement.
CREATE TABLE attempts (
  job_id     bigint  NOT NULL,
  attempt    integer NOT NULL,
  worker_id  text    NOT NULL,
  started_at bigint  NOT NULL,
  ended_at   bigint  NOT NULL,
  outcome    text    NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'timed_out', 'lease_expired', 'crashed', 'released', 'cancelled')),
  error      text,
  PRIMARY KEY (job_id, attempt)
);

-- Jobs ever added to and finished in each queue, for maxDepth checks across
-- nodes without a count(*): unfinished = added - finished. Two rows per queue
-- so intake (which locks 'added' to check the limit exactly) never waits for
-- completions (which add to 'finished' in the same statement as the jobs).
-- Intake reads 'finished' without a lock: a value a moment old is smaller,
-- so the check errs towards refusing, never towards overfilling.
CREATE TABLE queue_counts (
  queue text   NOT NULL,
  kind  text   NOT NULL CHECK (kind IN ('added', 'finished')),
  n     bigint NOT NULL,
  PRIMARY KEY (queue, kind)
);

-- Refuse an insert beyond a queue's limit from inside a statement (SQLSTATE
-- DR001; detail: the queue, hint: its limit), so plain enqueues need no
-- explicit transaction.
CREATE FUNCTION queue_full(queue text, max_depth bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'queue % is full', queue USING ERRCODE = 'DR001', DETAIL = queue, HINT = max_depth::text;
END
$$;

-- Live nodes: each heartbeats its row; a row older than the dead-node window
-- is deleted by a peer, which requeues the jobs that node held.
CREATE TABLE nodes (
  node_id      text   PRIMARY KEY,
  incarnation  text   NOT NULL,
  started_at   bigint NOT NULL,
  heartbeat_at bigint NOT NULL
);

CREATE TABLE api_keys (
  id         text   PRIMARY KEY,
  name       text   NOT NULL,
  hash       text   NOT NULL UNIQUE,
  scopes     text[] NOT NULL,
  created_at bigint NOT NULL,
  expires_at bigint,
  revoked_at bigint
);

-- The audit trail. Append-only: each row holds the hash of the row before it
-- (prev_hash) and a signature of its own hash. `seq` is assigned by the sealer
-- as the newest seq + 1, inside a transaction that holds the audit advisory
-- lock, so the chain has no gaps and no forks across nodes.
CREATE TABLE audit_log (
  seq         bigint PRIMARY KEY,
  time        text   NOT NULL,
  actor       text   NOT NULL,
  request_id  text,
  action      text   NOT NULL,
  target      text,
  before_json text   NOT NULL,
  after_json  text   NOT NULL,
  prev_hash   text   NOT NULL,
  hash        text   NOT NULL,
  signer      text   NOT NULL,
  signature   text   NOT NULL
);
