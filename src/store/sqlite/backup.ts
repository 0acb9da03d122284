/**
 * SQLite backups: a consistent single-file copy of a live store, read-only
 * inspection of a copy (integrity, schema version, row counts, audit records),
 * and placing a copy where a store lives, leaving the old files aside.
 *
 * Two ways to copy, because of who else writes:
 * - The process that owns the store (in-process schedule) uses SQLite's online
 *   backup API on its own connection: writes made through that connection
 *   while the copy runs are applied to the copy too, and each step is short,
 *   so the event loop keeps serving between steps.
 * - A tool beside a running node (`drover backup create`, `lock: false`) uses
 *   `VACUUM INTO`: the backup API restarts from page 1 whenever *another*
 *   connection writes, so under steady load it might never finish, whereas
 *   VACUUM INTO reads one WAL snapshot in one statement and never blocks the
 *   node's writer.
 *
 * Either way the copy is switched to rollback-journal mode before it is
 * hashed, so it is one self-contained file that a read-only open never
 * changes (a WAL-mode file would grow -wal/-shm companions).
 */
import { chmodSync, closeSync, copyFileSync, existsSync, fsyncSync, openSync, renameSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import Database from 'better-sqlite3';
import { DroverError, toError } from '../../core/errors.js';
import type { AuditRecord } from '../../core/types.js';
import type { AuditRange, BackupSnapshot } from '../engine.js';
import { AuditStatements } from './audit.js';
import { ensureParentDir } from './connection.js';
import { acquirePidfileLock, type PidfileLock } from './pidfile-lock.js';

/** Pages per backup-API step (4 MiB at the default page size): short enough not to stall the event loop. */
const PAGES_PER_STEP = 1024;

/** The file names SQLite keeps beside a database. */
export const SIDE_SUFFIXES = ['-wal', '-shm', '-journal'] as const;

/**
 * Copy the store behind `db` to `file` (which must not exist).
 * `owner`: this connection belongs to the process that holds the store's lock.
 *
 * @example
 * const snapshot = await snapshotSqlite(db, '/backups/x/drover.db', { owner: false });
 * snapshot.counts.jobs; // rows in the copy
 */
export async function snapshotSqlite(db: Database.Database, file: string, options: { owner: boolean }): Promise<BackupSnapshot> {
  if (existsSync(file)) throw new DroverError('validation', `backup target ${file} already exists`);
  ensureParentDir(file);
  const partial = `${file}.partial`;
  rmSync(partial, { force: true });
  try {
    if (options.owner) {
      await db.backup(partial, { progress: () => PAGES_PER_STEP });
    } else {
      db.prepare('VACUUM INTO ?').run(partial);
    }
    // The steps below are synchronous; yield between them so the node serves in between.
    await yieldToLoop();
    const copy = new Database(partial, { fileMustExist: true });
    try {
      copy.pragma('journal_mode = DELETE');
    } finally {
      copy.close();
    }
    await yieldToLoop();
    const reader = new SqliteBackupReader(partial);
    let snapshot: BackupSnapshot;
    try {
      snapshot = { schemaVersion: reader.schemaVersion(), counts: reader.counts() };
    } finally {
      reader.close();
    }
    // Asynchronous: a synchronous fsync of a large copy would stall the node's event loop.
    await fsyncFileAsync(partial);
    renameSync(partial, file);
    fsyncFile(dirname(file));
    return snapshot;
  } catch (error) {
    for (const suffix of ['', ...SIDE_SUFFIXES]) rmSync(partial + suffix, { force: true });
    if (error instanceof DroverError) throw error;
    throw new DroverError('store_unavailable', `backup to ${file} failed: ${toError(error).message}`, { cause: error });
  }
}

/**
 * Read-only view of a backup file. Opening never writes to the file, so
 * checksums taken before and after agree.
 *
 * @example
 * const reader = new SqliteBackupReader('/backups/x/drover.db');
 * try { reader.integrity(); } finally { reader.close(); }
 */
export class SqliteBackupReader {
  readonly #db: Database.Database;
  #audit: AuditStatements | null = null;

  constructor(file: string) {
    try {
      this.#db = new Database(file, { readonly: true, fileMustExist: true });
    } catch (error) {
      throw new DroverError('validation', `cannot open ${file} as a SQLite database: ${toError(error).message}`, { cause: error });
    }
  }

  /** `PRAGMA integrity_check` and `foreign_key_check`: an empty list means the file is sound. */
  problems(): string[] {
    try {
      const rows = this.#db.pragma('integrity_check') as Array<{ integrity_check: string }>;
      const problems = rows.map((r) => r.integrity_check).filter((m) => m !== 'ok');
      const orphans = this.#db.pragma('foreign_key_check') as unknown[];
      if (orphans.length > 0) problems.push(`${orphans.length} rows violate a foreign key`);
      return problems;
    } catch (error) {
      return [toError(error).message];
    }
  }

  schemaVersion(): number {
    const row = this.#db.prepare('SELECT max(version) AS v FROM schema_migrations').get() as { v: number | null };
    return row.v ?? 0;
  }

  /** Rows per table (every table except SQLite's own). */
  counts(): Record<string, number> {
    const tables = this.#db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
      .pluck()
      .all() as string[];
    const counts: Record<string, number> = {};
    for (const table of tables) {
      counts[table] = (this.#db.prepare(`SELECT count(*) FROM "${table.replace(/"/g, '""')}"`).pluck().get() as number) ?? 0;
    }
    return counts;
  }

  /** Audit records oldest first; none when the copy predates the audit table. */
  readAudit(range: AuditRange): AuditRecord[] {
    const has = this.#db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_log'").get();
    if (!has) return [];
    this.#audit ??= new AuditStatements(this.#db);
    return this.#audit.range(range);
  }

  close(): void {
    this.#db.close();
  }
}

export interface PlaceOptions {
  /** The verified backup file. */
  from: string;
  /** Where the store lives (the SQLite path). */
  target: string;
  /** Suffix for the files moved aside, e.g. a timestamp. */
  stamp: string;
  /** Check the copied file (checksum) before anything is moved aside; throw to abort. */
  checkCopy(file: string): Promise<void>;
}

export interface PlaceResult {
  /** Held until the caller has finished with the restored store (reclaim, audit); release it then. */
  lock: PidfileLock;
  /** Previous files, renamed (never deleted). Empty when the target did not exist. */
  aside: string[];
}

/**
 * Put a backup where the store lives. Takes the store's pidfile lock first, so
 * it refuses while a node runs on the target and keeps one from starting
 * mid-restore. The copy is written beside the target and checked before the
 * old files move aside (`drover.db` → `drover.db.before-restore-<stamp>`, with
 * its -wal/-shm renamed to match so SQLite still pairs them), then renamed
 * into place: a failure at any step leaves the old store where it was.
 */
export async function placeSqliteBackup(options: PlaceOptions): Promise<PlaceResult> {
  const { target, stamp } = options;
  ensureParentDir(target);
  const lock = acquirePidfileLock(target);
  const incoming = `${target}.restoring`;
  try {
    rmSync(incoming, { force: true });
    copyFileSync(options.from, incoming);
    chmodSync(incoming, 0o600); // whatever mode the backup file had: the store is drover's alone
    fsyncFile(incoming);
    await options.checkCopy(incoming);
    const aside: string[] = [];
    const asideBase = `${target}.before-restore-${stamp}`;
    for (const suffix of ['', ...SIDE_SUFFIXES]) {
      if (!existsSync(target + suffix)) continue;
      renameSync(target + suffix, asideBase + suffix);
      aside.push(asideBase + suffix);
    }
    renameSync(incoming, target);
    fsyncFile(dirname(target));
    return { lock, aside };
  } catch (error) {
    rmSync(incoming, { force: true });
    lock.release();
    throw error;
  }
}

/** The name `placeSqliteBackup` gives the previous store, for messages before it runs. */
export function asideName(target: string, stamp: string): string {
  return `${basename(target)}.before-restore-${stamp}`;
}

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

async function fsyncFileAsync(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function fsyncFile(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
