/**
 * The engine's records beside the jobs: API keys (`KeyStore`: stored by hash,
 * never the key itself), node metadata (`MetaStore`, meta.ts) and the audit
 * trail (`AuditStore`, audit.ts), all on the general pool.
 */
import type { ApiKeyRow, AuditEntry, AuditRecord } from '../../core/types.js';
import type { AuditPage, AuditRange, AuditSeal, AuditStore, KeyStore, MetaStore } from '../engine.js';
import * as audit from './audit.js';
import { inTransaction, retryConflicts } from './connection.js';
import type { EngineCore, RolePart } from './engine-core.js';
import * as meta from './meta.js';
import * as q from './queries.js';
import { toApiKeyRow, type RawApiKey } from './rows.js';

export class PostgresRecords implements RolePart<KeyStore & MetaStore & AuditStore> {
  readonly #core: EngineCore;

  constructor(core: EngineCore) {
    this.#core = core;
  }

  // --- API keys -----------------------------------------------------------

  async createKey(key: ApiKeyRow): Promise<void> {
    await this.#core.query(q.INSERT_KEY, [key.id, key.name, key.hash, key.scopes, key.handlers, key.createdAt, key.expiresAt, key.revokedAt]);
  }

  async findKeyByHash(hash: string): Promise<ApiKeyRow | null> {
    const raw = (await this.#core.query<RawApiKey>(q.KEY_BY_HASH, [hash]))[0];
    return raw ? toApiKeyRow(raw) : null;
  }

  async listKeys(): Promise<ApiKeyRow[]> {
    return (await this.#core.query<RawApiKey>(q.LIST_KEYS, [])).map(toApiKeyRow);
  }

  /** True when the key existed and was not already revoked. */
  async revokeKey(id: string): Promise<boolean> {
    const core = this.#core;
    core.assertOpen();
    return core.run('revoking a key', async () => ((await core.pool.query(q.REVOKE_KEY, [core.clock(), id])).rowCount ?? 0) > 0);
  }

  // --- node metadata ------------------------------------------------------

  getMeta(key: string): Promise<string | null> {
    return meta.getMeta(this.#core.query, key);
  }

  async setMeta(key: string, value: string): Promise<void> {
    await this.#core.query(q.SET_META, [key, value]);
  }

  updateMeta(key: string, update: (current: string | null) => string | null): Promise<string | null> {
    return this.#core.run('updating metadata', () => meta.updateMeta(this.#core.pool, key, update));
  }

  // --- audit trail --------------------------------------------------------

  appendAudit(entry: AuditEntry, seal: AuditSeal): Promise<AuditRecord> {
    const core = this.#core;
    return core.run('appending to the audit trail', () => retryConflicts(() => inTransaction(core.pool, (client) => audit.appendAudit(client, core.schema, entry, seal))));
  }

  listAudit(page: AuditPage): Promise<AuditRecord[]> {
    return this.#core.run('reading the audit trail', () => audit.listAudit(this.#core.pool, page));
  }

  readAudit(range: AuditRange): Promise<AuditRecord[]> {
    return this.#core.run('reading the audit trail', () => audit.readAudit(this.#core.pool, range));
  }
}
