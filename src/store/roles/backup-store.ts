/**
 * Taking a backup of the live store. Verifying and restoring a backup happen
 * with no live store (or beside a stopped one): that is the engine's
 * `BackupDriver` (store/backup-driver.ts).
 */
import type { StoreRole } from './capabilities.js';

/** What a backup holds, measured on the copy itself (not on the live store). */
export interface BackupSnapshot {
  schemaVersion: number;
  /** Rows per table in the copy. */
  counts: Record<string, number>;
  /** PostgreSQL: the schema the archive holds (pg_restore recreates it under that name). */
  schema?: string;
}

export interface BackupStore extends StoreRole {
  /**
   * Write a consistent copy of the whole store to `file` while it keeps
   * serving (SQLite: a database file; PostgreSQL: a `pg_dump` archive).
   * The file must not exist.
   */
  backupTo(file: string): Promise<BackupSnapshot>;
}
