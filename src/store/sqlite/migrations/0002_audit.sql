-- 0002: the audit trail. Append-only: each row holds the hash of the row
-- before it (prev_hash) and a signature of its own hash, so an edited,
-- deleted or reordered row is detected by `drover audit verify --db`.
-- `seq` is assigned by the engine as max(seq) + 1 inside the inserting
-- transaction (no AUTOINCREMENT: the chain, not SQLite, guarantees no gaps).

CREATE TABLE audit_log (
  seq         INTEGER PRIMARY KEY,
  time        TEXT    NOT NULL,
  actor       TEXT    NOT NULL,
  request_id  TEXT,
  action      TEXT    NOT NULL,
  target      TEXT,
  before_json TEXT    NOT NULL,
  after_json  TEXT    NOT NULL,
  prev_hash   TEXT    NOT NULL,
  hash        TEXT    NOT NULL,
  signer      TEXT    NOT NULL,
  signature   TEXT    NOT NULL
);
