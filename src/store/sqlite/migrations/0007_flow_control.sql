-- 0007: fair flow control (docs/configuration.md "Flow control").
--
-- `tenant`: the tenant a job runs for (its event's, or given on a direct
-- enqueue), so per-tenant lease caps and fairness need no join.
-- `priority_ms`: what one priority level is worth in milliseconds of waiting,
-- stamped from the job's queue weights. The lease order is ascending
-- `run_at - priority * priority_ms`: a job of priority p ranks as if it had
-- arrived p levels' worth earlier, so a low-priority job that waits long
-- enough overtakes newer high-priority ones (aging), and the order needs no
-- clock: it is the same at any "now", so an index can hold it. 2^40 ms
-- (about 35 years) is strict priority, the default.
-- `fair_tag`: the tenant's turn in a fair queue (start-time fair queuing,
-- assigned at enqueue); 0 outside fair queues. Leases go by turn first.
ALTER TABLE jobs ADD COLUMN tenant TEXT;
ALTER TABLE jobs ADD COLUMN priority_ms INTEGER NOT NULL DEFAULT 1099511627776;
ALTER TABLE jobs ADD COLUMN fair_tag INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET tenant = (SELECT tenant FROM events WHERE events.id = jobs.event_id) WHERE event_id IS NOT NULL;

CREATE INDEX jobs_lease_order ON jobs (handler, fair_tag, run_at - priority * priority_ms, id) WHERE state = 'queued';
DROP INDEX jobs_queued_by_handler;
-- A fair queue's next turn for a tenant: the tail of its waiting jobs
-- (scheduled ones too, so a tenant's delayed burst takes successive turns).
CREATE INDEX jobs_fair_tail ON jobs (queue, tenant, fair_tag) WHERE state IN ('queued', 'scheduled') AND fair_tag > 0;
-- A fair queue's current turn (its head): the smallest turn still queued or,
-- with nothing queued, the largest one scheduled (so a job back from a retry
-- backoff keeps its place after the queue ran dry). Without it every insert
-- into a fair queue would read the whole backlog.
CREATE INDEX jobs_fair_head ON jobs (queue, state, fair_tag) WHERE state IN ('queued', 'scheduled') AND fair_tag > 0;
-- Lease caps: running jobs per tenant and per worker.
CREATE INDEX jobs_running_tenant ON jobs (tenant) WHERE state = 'running' AND tenant IS NOT NULL;
CREATE INDEX jobs_running_worker ON jobs (worker_id) WHERE state = 'running';
-- Worker caps per work key: running jobs per leasing key.
CREATE INDEX jobs_running_key ON jobs (lease_key_id) WHERE state = 'running' AND lease_key_id IS NOT NULL;
