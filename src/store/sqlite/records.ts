/**
 * The engine's records beside the jobs: API keys (`KeyStore`: stored by hash,
 * never the key itself; scopes and the optional handler allow-list as JSON
 * text), node metadata (`MetaStore`) and the audit trail (`AuditStore`, audit.ts).
 * Writes are group-commit write ops; reads wait until the writes before them
 * are durable (engine-core.ts `visible`).
 */
import type { ApiKeyRow, AuditEntry, AuditRecord } from '../../core/types.js';
import type { AuditPage, AuditRange, AuditSeal, AuditStore, KeyStore, MetaStore } from '../engine.js';
import { readStatements, type EngineCore, type RolePart } from './engine-core.js';
import { toApiKeyRow } from './rows.js';

export class SqliteRecords implements RolePart<KeyStore & MetaStore & AuditStore> {
  readonly #core: EngineCore;

  constructor(core: EngineCore) {
    this.#core = core;
  }

  // --- API keys -----------------------------------------------------------

  createKey(key: ApiKeyRow): Promise<void> {
    return this.#core.write(() => {
      this.#core.prepared.s.fixed.insertKey.run(
        key.id,
        key.name,
        key.hash,
        JSON.stringify(key.scopes),
        key.handlers === null ? null : JSON.stringify(key.handlers),
        key.createdAt,
        key.expiresAt,
        key.revokedAt,
      );
    });
  }

  async findKeyByHash(hash: string): Promise<ApiKeyRow | null> {
    await this.#core.visible();
    const raw = readStatements(this.#core).fixed.keyByHash.get(hash);
    return raw ? toApiKeyRow(raw) : null;
  }

  async listKeys(): Promise<ApiKeyRow[]> {
    await this.#core.visible();
    return readStatements(this.#core).fixed.listKeys.all().map(toApiKeyRow);
  }

  /** True when the key existed and was not already revoked. */
  revokeKey(id: string): Promise<boolean> {
    return this.#core.write(() => this.#core.prepared.s.fixed.revokeKey.run(this.#core.clock(), id).changes > 0);
  }

  // --- node metadata ------------------------------------------------------

  async getMeta(key: string): Promise<string | null> {
    await this.#core.visible();
    return readStatements(this.#core).fixed.getMeta.get(key)?.value ?? null;
  }

  setMeta(key: string, value: string): Promise<void> {
    return this.#core.write(() => {
      this.#core.prepared.s.fixed.setMeta.run(key, value);
    });
  }

  updateMeta(key: string, update: (current: string | null) => string | null): Promise<string | null> {
    // Read and write in one operation of the write transaction: nothing runs in between.
    return this.#core.write(() => {
      const s = this.#core.prepared.s.fixed;
      const current = s.getMeta.get(key)?.value ?? null;
      const next = update(current);
      if (next === null || next === current) return current;
      s.setMeta.run(key, next);
      return next;
    });
  }

  // --- audit trail --------------------------------------------------------

  appendAudit(entry: AuditEntry, seal: AuditSeal): Promise<AuditRecord> {
    return this.#core.write(() => this.#core.prepared.audit.append(entry, seal));
  }

  async listAudit(page: AuditPage): Promise<AuditRecord[]> {
    await this.#core.visible();
    this.#core.assertOpen();
    return this.#core.prepared.audit.page(page);
  }

  async readAudit(range: AuditRange): Promise<AuditRecord[]> {
    await this.#core.visible();
    this.#core.assertOpen();
    return this.#core.prepared.audit.range(range);
  }
}
