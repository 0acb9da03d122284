/** The append-only, hash-chained audit trail. */
import type { AuditEntry, AuditRecord } from '../../core/types.js';
import type { StoreRole } from './capabilities.js';

/**
 * Chains and signs one audit entry, given the newest record so far (null for
 * the first). Engines call it inside the transaction that inserts the record,
 * so no other record can come between; it must be synchronous and pure.
 */
export type AuditSeal = (entry: AuditEntry, previous: { seq: number; hash: string } | null) => AuditRecord;

export interface AuditPage {
  limit: number;
  /** Newest first: records with seq < before (a cursor). */
  before?: number;
}

export interface AuditRange {
  /** Engines may return fewer (at most 10,000 per call); page on with `after` until a call returns none. */
  limit: number;
  /** Oldest first: records with seq > after (default 0, from the first). */
  after?: number;
}

export interface AuditStore extends StoreRole {
  /** Append one record: `seal` chains it to the newest record, atomically. */
  appendAudit(entry: AuditEntry, seal: AuditSeal): Promise<AuditRecord>;
  /** Newest first, for `GET /v1/audit`. */
  listAudit(page: AuditPage): Promise<AuditRecord[]>;
  /** Oldest first, for verification and export. */
  readAudit(range: AuditRange): Promise<AuditRecord[]>;
}
