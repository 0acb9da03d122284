-- 0005: durable execution (docs/durable-execution.md): job state
-- `suspended`, attempt outcome `suspended`, a job's finished steps, and the
-- waits of suspended jobs.
--
-- The widened CHECKs are added NOT VALID: every existing row satisfies the
-- narrower ones they replace, and validating would scan `jobs` under the
-- exclusive lock this migration holds. New rows are checked all the same.
ALTER TABLE jobs DROP CONSTRAINT jobs_state_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_state_check
  CHECK (state IN ('scheduled', 'queued', 'running', 'suspended', 'succeeded', 'dead', 'cancelled')) NOT VALID;
ALTER TABLE attempts DROP CONSTRAINT attempts_outcome_check;
ALTER TABLE attempts ADD CONSTRAINT attempts_outcome_check
  CHECK (outcome IN ('succeeded', 'failed', 'timed_out', 'lease_expired', 'crashed', 'released', 'suspended', 'cancelled')) NOT VALID;

-- A job's finished steps. Results live here, not in the hot `jobs` row. No
-- foreign key (like `attempts`): pruning deletes steps with their jobs in the
-- same statement, and a step is only written under the job's row lock.
CREATE TABLE steps (
  job_id       bigint  NOT NULL,
  name         text    NOT NULL,
  seq          integer NOT NULL,
  kind         text    NOT NULL CHECK (kind IN ('run', 'sleep', 'event', 'interrupt')),
  -- The lease (attempts.attempt) that finished it.
  attempt      integer NOT NULL,
  started_at   bigint  NOT NULL,
  finished_at  bigint  NOT NULL,
  result       json    NOT NULL,
  result_bytes integer NOT NULL,
  timed_out    boolean NOT NULL DEFAULT false,
  PRIMARY KEY (job_id, name)
);
CREATE UNIQUE INDEX steps_seq ON steps (job_id, seq);

-- The wait of a suspended job (one per suspension; resolved, timed-out and
-- cancelled ones stay as history until their job is pruned). Ids are
-- `wt_` + creation time (hex) + 128 random bits: unguessable, and their order
-- is creation order, so keyset pages by id read newest first.
CREATE TABLE waits (
  id          text    PRIMARY KEY,
  job_id      bigint  NOT NULL,
  handler     text    NOT NULL,
  tenant      text,
  step        text    NOT NULL,
  seq         integer NOT NULL,
  kind        text    NOT NULL CHECK (kind IN ('sleep', 'event', 'interrupt')),
  state       text    NOT NULL CHECK (state IN ('pending', 'resolved', 'timed_out', 'cancelled')),
  created_at  bigint  NOT NULL,
  -- When the step began (an event wait's look-back starts here).
  started_at  bigint  NOT NULL,
  wake_at     bigint,
  events      text[],
  match       json,
  prompt      text,
  schema      json,
  resolved_at bigint,
  resolved_by text
);
-- Pruning with the job, and "one pending wait per job" (also pendingWait's lookup).
CREATE INDEX waits_job ON waits (job_id);
CREATE UNIQUE INDEX waits_one_pending ON waits (job_id) WHERE state = 'pending';
-- stageDue's wake scan and the next wake time.
CREATE INDEX waits_wake ON waits (wake_at) WHERE state = 'pending' AND wake_at IS NOT NULL;
-- listWaits and pendingInterrupts (newest first by id within kind and state).
CREATE INDEX waits_kind_state ON waits (kind, state, id);
CREATE INDEX waits_state ON waits (state, id);

-- The event names pending waits listen for, one row per (name, wait), only
-- while the wait is pending: ingest looks its events' names up here, one index
-- probe that finds nothing when nobody waits (the hot path's cost).
CREATE TABLE wait_events (
  event_name text NOT NULL,
  wait_id    text NOT NULL,
  PRIMARY KEY (event_name, wait_id)
);
CREATE INDEX wait_events_wait ON wait_events (wait_id);

-- The look-back at suspend: events of a name accepted since the step began.
CREATE INDEX events_name_received ON events (name, received_at);
