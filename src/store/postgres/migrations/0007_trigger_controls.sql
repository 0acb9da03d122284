-- 0007: debounce, throttle and batch on triggers (docs/configuration.md
-- "Debounce, throttle and batch"; the decisions are in core/trigger-control.ts).
--
-- `trigger_groups`: one row per (trigger, key) group a controlled trigger has
-- seen, written in the ingest transaction. `open_job`: the scheduled job that
-- the group's debounce/batch events merge into (NULL: none open; a job that
-- is no longer `scheduled`, or was ever leased, is closed whatever this says). `open_until`: the
-- latest run_at of that job (first event + maxWaitMs; NULL: no bound).
-- `open_count`: events in it. `tat`: throttle's theoretical arrival time
-- (GCRA): the earliest start of the group's next job. A group with no
-- scheduled open job and a `tat` in the past holds nothing: pruning it
-- changes no decision.
CREATE TABLE trigger_groups (
  group_key text PRIMARY KEY,
  open_job bigint,
  open_until bigint,
  open_count integer NOT NULL DEFAULT 0,
  tat bigint,
  updated_at bigint NOT NULL
);

-- Which job each debounced or batched event went into (the job's own
-- event_id names one event only), kept as long as events are (`retention.eventsMs`,
-- by `at`, the event's receipt). `merged`: true when an earlier event opened it.
CREATE TABLE event_merges (
  event_id text NOT NULL,
  job_id bigint NOT NULL,
  kind text NOT NULL,
  merged boolean NOT NULL,
  at bigint NOT NULL,
  PRIMARY KEY (event_id, job_id)
);
CREATE INDEX event_merges_at ON event_merges (at);
-- Groups idle past event retention, with nothing open or pending, are pruned.
CREATE INDEX trigger_groups_idle ON trigger_groups (updated_at);
