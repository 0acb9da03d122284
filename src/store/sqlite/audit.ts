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
import { AUDIT_COLUMNS, auditLimit, auditValues, toAuditRecord, type RawAudit } from '../audit-rows.js';
import type { AuditPage, AuditRange, AuditSeal } from '../engine.js';

export class AuditStatements {
  readonly #last: Database.Statement<[], { seq: number; hash: string }>;
  readonly #insert: Database.Statement<unknown[]>;
  readonly #page: Database.Statement<[number, number], RawAudit>;
  readonly #range: Database.Statement<[number, number], RawAudit>;

  /** Prepare against `db` (the schema must be at version 2 or later). */
  constructor(db: Database.Database) {
    this.#last = db.prepare('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1');
    this.#insert = db.prepare(`INSERT INTO audit_log (${AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    this.#page = db.prepare('SELECT * FROM audit_log WHERE seq < ? ORDER BY seq DESC LIMIT ?');
    this.#range = db.prepare('SELECT * FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?');
  }

  /** Run inside a write transaction. */
  append(entry: AuditEntry, seal: AuditSeal): AuditRecord {
    const record = seal(entry, this.#last.get() ?? null);
    this.#insert.run(...auditValues(record));
    return record;
  }

  page(page: AuditPage): AuditRecord[] {
    return this.#page.all(page.before ?? Number.MAX_SAFE_INTEGER, auditLimit(page.limit)).map(toAuditRecord);
  }

  range(range: AuditRange): AuditRecord[] {
    return this.#range.all(range.after ?? 0, auditLimit(range.limit)).map(toAuditRecord);
  }
}
