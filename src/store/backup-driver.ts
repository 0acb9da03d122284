/**
 * Verifying and restoring a backup, per engine, behind the seam: `ops/`
 * decides what to check and in which order and keeps the manifest, the
 * checksums and the audit; the driver knows how to open an engine's copy and
 * how to put one where that engine's store lives. Taking a backup needs the
 * live store and is `BackupStore.backupTo`.
 *
 * The driver for a backup comes from its manifest (`backupDriver(engine)`),
 * the driver for a target from its URL (`backupDriverFor(url)`).
 */
import { lazy } from '../core/lazy.js';
import type { AuditRecord } from '../core/types.js';
import type { StorageEngine } from './engine.js';
import { loadMigrationFiles } from './migrations.js';
import { engineFor } from './open.js';
import type { AuditRange } from './roles/audit-store.js';
import type { StoreCapabilities } from './roles/capabilities.js';

/** Report one named check of a backup; any check not `ok` fails the verification. */
export type BackupCheckSink = (name: string, ok: boolean, detail: string) => void;

/** What an opened copy of a backup holds, read from the copy itself. */
export interface BackupContents {
  schemaVersion: number;
  /** Rows per table in the copy. */
  counts: Record<string, number>;
  /** The copy's audit trail, oldest first. */
  audit: { readAudit(range: AuditRange): Promise<AuditRecord[]> | AuditRecord[] };
  /** How checks name the copy (`drover.db`, `archive`). */
  label: string;
}

export interface InspectOptions {
  /** PostgreSQL: the schema the manifest says the archive holds (default `drover`). */
  schema?: string;
  /** PostgreSQL: the server to restore a scratch copy on (`DROVER_DATABASE_URL`). */
  databaseUrl?: string;
}

export interface PlaceOptions {
  /** The verified backup file. */
  file: string;
  /** The store to restore into. */
  databaseUrl: string;
  /** Suffix naming what is moved aside, e.g. a timestamp. */
  stamp: string;
  /** PostgreSQL: the target schema; default `DROVER_PG_SCHEMA`, else `drover`. */
  schema?: string;
  /** PostgreSQL: the schema the archive holds (the manifest's). */
  archivedSchema?: string;
  /** SQLite: check the copied file (its checksum) before anything is moved aside; throw to abort. */
  checkCopy(file: string): Promise<void>;
}

/** A backup in place of the store; the previous store is kept aside, never deleted. */
export interface PlacedBackup {
  /** What was restored, for messages and the audit (`/data/drover.db`, `schema drover`). */
  target: string;
  /** The previous store, renamed: files or a schema. Empty when there was none. */
  aside: string[];
  /** Open the restored store (not migrated; no single-owner lock: the placement holds it). */
  open(options: { clock: () => number }): Promise<StorageEngine>;
  /** Let nodes start on the store again (SQLite: drop the lock taken while placing). */
  release(): void;
}

export interface BackupDriver {
  readonly engine: StoreCapabilities['engine'];
  /** Highest schema version this drover knows for the engine. */
  latestSchemaVersion(): number;
  /**
   * Open the backup `file` read-only (PostgreSQL: restored into a scratch
   * database, dropped after), report the engine's own checks through `check`
   * (SQLite: `integrity`; PostgreSQL: `archive`, `integrity`) and, when they
   * pass, hand the contents to `use`. Never throws for a bad backup: it
   * reports a failed check.
   */
  inspect(file: string, options: InspectOptions, check: BackupCheckSink, use: (contents: BackupContents) => Promise<void>): Promise<void>;
  /**
   * Put the verified backup where the store of `databaseUrl` lives. Refuses
   * (`store_unavailable`, naming what to stop) while a node uses the target.
   */
  place(options: PlaceOptions): Promise<PlacedBackup>;
}

/**
 * @example
 * backupDriver(manifest.engine).latestSchemaVersion(); // 5
 */
export function backupDriver(engine: StoreCapabilities['engine']): BackupDriver {
  return engine === 'postgres' ? postgresDriver : sqliteDriver;
}

/**
 * An engine's driver, imported at its first use: a node loads only its own
 * engine's driver library (pg or better-sqlite3), and only when a backup is
 * verified or restored (issue 24, worker RSS).
 */
function lazyDriver(engine: StoreCapabilities['engine'], load: () => Promise<BackupDriver>): BackupDriver {
  const driver = lazy(load);
  const migrations = new URL(`./${engine}/migrations/`, import.meta.url);
  return {
    engine,
    latestSchemaVersion: () => loadMigrationFiles(migrations).length,
    inspect: async (...args) => (await driver()).inspect(...args),
    place: async (options) => (await driver()).place(options),
  };
}
const postgresDriver = lazyDriver('postgres', async () => {
  (await import('./postgres/load-pg.js')).loadPg();
  return (await import('./postgres/backup-driver.js')).postgresBackupDriver;
});
const sqliteDriver = lazyDriver('sqlite', async () => (await import('./sqlite/backup-driver.js')).sqliteBackupDriver);

/**
 * @example
 * backupDriverFor('postgres://db/app').engine; // 'postgres'
 */
export function backupDriverFor(databaseUrl: string): BackupDriver {
  return backupDriver(engineFor(databaseUrl));
}
