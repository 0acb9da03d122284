/**
 * API key rows: stored by hash (never the key itself); scopes and the
 * optional handler allow-list as JSON text.
 */
import type { ApiKeyRow } from '../../core/types.js';
import { toApiKeyRow } from './rows.js';
import type { FixedStatements } from './statements.js';

export function insertKey(s: FixedStatements, key: ApiKeyRow): void {
  s.insertKey.run(
    key.id,
    key.name,
    key.hash,
    JSON.stringify(key.scopes),
    key.handlers === null ? null : JSON.stringify(key.handlers),
    key.createdAt,
    key.expiresAt,
    key.revokedAt,
  );
}

export function readKeyByHash(s: FixedStatements, hash: string): ApiKeyRow | null {
  const raw = s.keyByHash.get(hash);
  return raw ? toApiKeyRow(raw) : null;
}
