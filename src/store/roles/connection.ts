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

/**
 * Called after a commit that made work available (new due jobs).
 *
 * - `queues`: the queues that got due work; empty means "some queues".
 * - `handlers`: the handlers of every job the commit made due; a listener may
 *   look for those handlers' work only. `undefined` means "any handler": the
 *   engine could not name them (a reconnect of the notice session, another
 *   node's notice too large to list them, a freed concurrency key that lets
 *   jobs of other handlers run), and a listener must look for all.
 *
 * Jobs scheduled for later are announced when they become due (the
 * scheduler's `stageDue` commit), naming their handlers then.
 *
 * @example
 * store.onWork((queues, handlers) => dispatcher.wake(handlers));
 */
export type WorkListener = (queues: readonly string[], handlers: readonly string[] | undefined) => void;

export interface StoreConnection extends StoreRole {
  /** Apply pending migrations; throws `SchemaTooNewError` when the store is newer than this binary. */
  migrate(options?: MigrateOptions): Promise<MigrationStatus>;
  /** Cheap round trip for readiness. */
  ping(): Promise<void>;
  close(): Promise<void>;
  /** Subscribe to "work is available" notifications; returns an unsubscribe function. */
  onWork(listener: WorkListener): () => void;
}
