/**
 * A small key-value store beside the jobs: pauses, supervision, webhook
 * breakers and triggers, the node id and the last backup time keep their
 * documents here.
 */
import type { StoreRole } from './capabilities.js';

export interface MetaStore extends StoreRole {
  getMeta(key: string): Promise<string | null>;
  setMeta(key: string, value: string): Promise<void>;
  /**
   * Read-modify-write one value atomically: `update` gets the stored value
   * (null: none) and returns the value to store (null: leave it as it is).
   * Callers on every node sharing the store are served one at a time per
   * key, so none overwrites a change it has not seen. Resolves to the value
   * stored afterwards. `update` must be quick and must not throw.
   */
  updateMeta(key: string, update: (current: string | null) => string | null): Promise<string | null>;
}
