/**
 * The SQLite side of the audit trail: append a record chained to the newest
 * one, and read records in either order. Chaining and signing happen in the
 * caller's `AuditSeal`; this file only guarantees that the read of the newest
 * record and the insert share one transaction (the group commit runs every
 * write synchronously inside BEGIN IMMEDIATE, so no other writer — in this
 * process or another — can insert in between).
 */
import type Database from 'better-sqlite3';
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

const limitOf = (limit: number) => Math.min(MAX_PAGE, Math.max(0, Math.floor(limit)));

export class AuditStatements {
  readonly #last: Database.Statement<[], { seq: number; hash: string }>;
  readonly #insert: Database.Statement<unknown[]>;
  readonly #page: Database.Statement<[number, number], RawAudit>;
  readonly #range: Database.Statement<[number, number], RawAudit>;

  /** Prepare against `db` (the schema must be at version 2 or later). */
  constructor(db: Database.Database) {
    this.#last = db.prepare('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1');
    this.#insert = db.prepare(`
      INSERT INTO audit_log (seq, time, actor, request_id, action, target, before_json, after_json, prev_hash, hash, signer, signature)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    this.#page = db.prepare('SELECT * FROM audit_log WHERE seq < ? ORDER BY seq DESC LIMIT ?');
    this.#range = db.prepare('SELECT * FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?');
  }

  /** Run inside a write transaction. */
  append(entry: AuditEntry, seal: AuditSeal): AuditRecord {
    const record = seal(entry, this.#last.get() ?? null);
    this.#insert.run(
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
    );
    return record;
  }

  page(page: AuditPage): AuditRecord[] {
    return this.#page.all(page.before ?? Number.MAX_SAFE_INTEGER, limitOf(page.limit)).map(toAuditRecord);
  }

  range(range: AuditRange): AuditRecord[] {
    return this.#range.all(range.after ?? 0, limitOf(range.limit)).map(toAuditRecord);
  }
}
