-- 0003: which lease's handler actually started. A node leases quick jobs
-- ahead into a local buffer; when it dies those jobs are reclaimed, and only
-- those whose handler had started may count as a crash (toward `poisonAfter`)
-- and spend an attempt. The runtime writes `started_seq = lease_seq` (its
-- lease's number) before the handler runs; a reclaim compares the two. A
-- number, not a flag, so a new lease needs no reset: it bumps lease_seq.
ALTER TABLE jobs ADD COLUMN started_seq integer NOT NULL DEFAULT 0;
-- Jobs running at upgrade were leased by a binary that started them at once.
UPDATE jobs SET started_seq = lease_seq WHERE state = 'running';
