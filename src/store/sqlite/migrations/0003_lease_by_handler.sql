-- 0003: lease order per handler. A lease asks for several handlers (the
-- node's own plus the built-in ones, which are usually idle); with the lease
-- order index not keyed by handler, asking for a handler with no queued jobs
-- scanned every queued job of the others (measured: 3 ms per lease with
-- 20,000 queued). Keyed by handler, each handler's next jobs are one index
-- probe, and an idle handler costs nothing. The engine queries each handler
-- in turn and merges (see SqliteStatements.leaseCandidates).
CREATE INDEX jobs_queued_by_handler ON jobs (handler, priority DESC, run_at, id) WHERE state = 'queued';
DROP INDEX jobs_queued;
