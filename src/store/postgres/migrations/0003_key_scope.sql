-- 0003: least privilege for work keys (docs/remote-workers.md, "Key scope").
-- api_keys.handlers: the handler patterns a work key may work on; NULL is the
-- default (handlers declared remote: true).
-- jobs.lease_key_id: the API key that took the current lease over HTTP (NULL
-- for the node's own leases), so only that key may heartbeat, complete, fail
-- or release it. Written by every lease; meaningful while the job is running.
-- jobs.lease_call: the lease call that took the job, so a call whose commit
-- is unknown can be undone (lease.ts, RELEASE_BY_CALL). It used to be the
-- lease token's prefix, which let one token of a call derive the others;
-- each token is now independently random. Nullable and without a default, so
-- adding the columns rewrites nothing.
ALTER TABLE api_keys ADD COLUMN handlers text[];
ALTER TABLE jobs ADD COLUMN lease_key_id text;
ALTER TABLE jobs ADD COLUMN lease_call text;
