-- 0002: dispatch rate limits shared by every node (handlers[].rateLimit).
-- One row per handler and key (`scope`): the start times still inside its
-- period, oldest first (a sliding log, never more than `limit` entries), and
-- when the row holds nothing that matters any more (the pruner drops it then).

CREATE TABLE rate_windows (
  scope      text     PRIMARY KEY,
  starts     bigint[] NOT NULL,
  expires_at bigint   NOT NULL
);

CREATE INDEX rate_windows_expires ON rate_windows (expires_at);
