/**
 * The PostgreSQL side of the audit trail. Appends from every node are
 * serialised by a transaction-level advisory lock on the schema's trail, so
 * reading the newest record, sealing the new one (the caller's synchronous
 * `AuditSeal`) and inserting it cannot interleave with another append.
 */
import type pg from 'pg';
import type { AuditEntry, AuditRecord } from '../../core/types.js';
import type { AuditPage, AuditRange, AuditSeal } from '../engine.js';
import { toJson } from './rows.js';

interface RawAudit {
  seq: number;
  time: string;
  actor: string;
  request_id: string | null;
  action: string;
  target: string | null;
  before_json: string;
  after_json: string;
  prev_hash: string;
  hash: string;
  signer: string;
  signature: string;
}

/** Most records one read returns, whatever the caller asks for. */
const MAX_PAGE = 10_000;
const limitOf = (limit: number) => Math.min(MAX_PAGE, Math.max(0, Math.floor(limit)));

function toAuditRecord(raw: RawAudit): AuditRecord {
  return {
    seq: raw.seq,
    time: raw.time,
    actor: raw.actor,
    requestId: raw.request_id,
    action: raw.action,
    target: raw.target,
    before: JSON.parse(raw.before_json) as unknown,
    after: JSON.parse(raw.after_json) as unknown,
    prevHash: raw.prev_hash,
    hash: raw.hash,
    signer: raw.signer,
    signature: raw.signature,
  };
}

/** Inside the caller's transaction. */
export async function appendAudit(client: pg.PoolClient, schema: string, entry: AuditEntry, seal: AuditSeal): Promise<AuditRecord> {
  await client.query("SELECT pg_advisory_xact_lock(hashtextextended('drover:audit:' || $1, 0))", [schema]);
  const { rows } = await client.query<{ seq: number; hash: string }>('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1');
  const record = seal(entry, rows[0] ?? null);
  await client.query(
    `INSERT INTO audit_log (seq, time, actor, request_id, action, target, before_json, after_json, prev_hash, hash, signer, signature)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
    [
      record.seq,
      record.time,
      record.actor,
      record.requestId,
      record.action,
      record.target,
      toJson(record.before),
      toJson(record.after),
      record.prevHash,
      record.hash,
      record.signer,
      record.signature,
    ],
  );
  return record;
}

export async function listAudit(db: pg.Pool, page: AuditPage): Promise<AuditRecord[]> {
  const { rows } = await db.query<RawAudit>('SELECT * FROM audit_log WHERE seq < $1 ORDER BY seq DESC LIMIT $2', [
    page.before ?? Number.MAX_SAFE_INTEGER,
    limitOf(page.limit),
  ]);
  return rows.map(toAuditRecord);
}

export async function readAudit(db: pg.Pool, range: AuditRange): Promise<AuditRecord[]> {
  const { rows } = await db.query<RawAudit>('SELECT * FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2', [range.after ?? 0, limitOf(range.limit)]);
  return rows.map(toAuditRecord);
}
