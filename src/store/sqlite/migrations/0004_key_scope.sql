-- 0004: least privilege for work keys (docs/remote-workers.md, "Key scope").
-- api_keys.handlers: the handler patterns a work key may work on, as a JSON
-- array; NULL is the default (handlers declared remote: true).
-- jobs.lease_key_id: the API key that took the current lease over HTTP (NULL
-- for the node's own leases), so only that key may heartbeat, complete, fail
-- or release it. Written by every lease; meaningful while the job is running.
ALTER TABLE api_keys ADD COLUMN handlers TEXT;
ALTER TABLE jobs ADD COLUMN lease_key_id TEXT;
