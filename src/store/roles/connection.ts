/** The store as a whole: its schema, its liveness, its wakeups. */
import type { StoreRole } from './capabilities.js';

export interface MigrationStatus {
  /** Version the database is at after migrating. */
  current: number;
  /** Highest version this binary knows. */
  latest: number;
  applied: number[];
}

export interface MigrateOptions {
  /** False: only check the schema version (throws when it is behind or ahead). Default true. */
  apply?: boolean;
}

/** Called after a commit that made work available (new due jobs). */
export type WorkListener = (queues: readonly string[]) => void;

export interface StoreConnection extends StoreRole {
  /** Apply pending migrations; throws `SchemaTooNewError` when the store is newer than this binary. */
  migrate(options?: MigrateOptions): Promise<MigrationStatus>;
  /** Cheap round trip for readiness. */
  ping(): Promise<void>;
  close(): Promise<void>;
  /** Subscribe to "work is available" notifications; returns an unsubscribe function. */
  onWork(listener: WorkListener): () => void;
}
