/**
 * The PostgreSQL side of the audit trail. Appends from every node are
 * serialised by a transaction-level advisory lock on the schema's trail, so
 * reading the newest record, sealing the new one (the caller's synchronous
 * `AuditSeal`) and inserting it cannot interleave with another append.
 */
import type pg from 'pg';
import type { AuditEntry, AuditRecord } from '../../core/types.js';
import { AUDIT_COLUMNS, auditLimit, auditValues, toAuditRecord, type RawAudit } from '../audit-rows.js';
import type { AuditPage, AuditRange, AuditSeal } from '../engine.js';

/** Inside the caller's transaction. */
export async function appendAudit(client: pg.PoolClient, schema: string, entry: AuditEntry, seal: AuditSeal): Promise<AuditRecord> {
  await client.query("SELECT pg_advisory_xact_lock(hashtextextended('drover:audit:' || $1, 0))", [schema]);
  const { rows } = await client.query<{ seq: number; hash: string }>('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1');
  const record = seal(entry, rows[0] ?? null);
  await client.query(`INSERT INTO audit_log (${AUDIT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`, auditValues(record));
  return record;
}

export async function listAudit(db: pg.Pool, page: AuditPage): Promise<AuditRecord[]> {
  const { rows } = await db.query<RawAudit>('SELECT * FROM audit_log WHERE seq < $1 ORDER BY seq DESC LIMIT $2', [
    page.before ?? Number.MAX_SAFE_INTEGER,
    auditLimit(page.limit),
  ]);
  return rows.map(toAuditRecord);
}

export async function readAudit(db: pg.Pool, range: AuditRange): Promise<AuditRecord[]> {
  const { rows } = await db.query<RawAudit>('SELECT * FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2', [range.after ?? 0, auditLimit(range.limit)]);
  return rows.map(toAuditRecord);
}
