/** API keys: stored by the hash of their secret, never the secret. */
import type { ApiKeyRow } from '../../core/types.js';
import type { StoreRole } from './capabilities.js';

export interface KeyStore extends StoreRole {
  createKey(key: ApiKeyRow): Promise<void>;
  findKeyByHash(hash: string): Promise<ApiKeyRow | null>;
  listKeys(): Promise<ApiKeyRow[]>;
  revokeKey(id: string): Promise<boolean>;
}
