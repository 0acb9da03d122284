/**
 * The audit trail's row shape, shared by both engines: how a stored row reads
 * back as an `AuditRecord`, the values an insert writes (in the order of
 * `AUDIT_COLUMNS`), and the page size a read is held to. The SQL stays in
 * each engine.
 */
import type { AuditRecord } from '../core/types.js';
import { toJson } from './rows.js';

export interface RawAudit {
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

/** The columns an append writes, in the order of `auditValues`. */
export const AUDIT_COLUMNS = 'seq, time, actor, request_id, action, target, before_json, after_json, prev_hash, hash, signer, signature';

/** Most records one read returns, whatever the caller asks for. */
const MAX_PAGE = 10_000;

/** The caller's limit, held to 0..MAX_PAGE. */
export const auditLimit = (limit: number): number => Math.min(MAX_PAGE, Math.max(0, Math.floor(limit)));

export function toAuditRecord(raw: RawAudit): AuditRecord {
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

/** A sealed record's values for an insert into `AUDIT_COLUMNS`. */
export function auditValues(record: AuditRecord): unknown[] {
  return [
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
  ];
}
