/**
 * Opening a better-sqlite3 connection with Drover's durability settings,
 * reading them back (for `drover doctor` and tests), and checkpointing its WAL.
 */
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';

export interface ConnectionOptions {
  synchronous?: 'FULL' | 'NORMAL';
  busyTimeoutMs?: number;
  /** The page cache's limit (KiB); default better-sqlite3's build, 16,000 KiB. */
  cacheKib?: number;
}

export interface ConnectionSettings {
  journalMode: string;
  synchronous: 'OFF' | 'NORMAL' | 'FULL' | 'EXTRA';
  foreignKeys: boolean;
  busyTimeoutMs: number;
  cacheKib: number;
}

export function isInMemory(path: string): boolean {
  return path === ':memory:' || path === '';
}

/** Create the database file's directory (the lock file lives there too), for drover's user only. */
export function ensureParentDir(path: string): void {
  if (!isInMemory(path)) mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
}

/**
 * Create an absent database file with mode 0600. SQLite gives the -wal and
 * -shm files the database file's mode, so they are private too; left to
 * SQLite, all three would be 0644 (payloads and webhook secrets world-readable).
 */
function createPrivate(path: string): void {
  if (isInMemory(path) || path.startsWith('file:') || existsSync(path)) return;
  closeSync(openSync(path, 'a', 0o600));
}

/** Open `path` (creating its directory) in WAL mode; throws a plain Error on failure. */
export function openConnection(path: string, options: ConnectionOptions = {}): Database.Database {
  ensureParentDir(path);
  createPrivate(path);
  const db = new Database(path);
  try {
    // WAL: readers never block the writer, and a commit is one sequential append.
    const mode = String(db.pragma('journal_mode = WAL', { simple: true })).toLowerCase();
    if (!isInMemory(path) && mode !== 'wal') {
      // Silently running in rollback-journal mode would halve throughput and
      // block readers; refuse so the operator moves the file to a local disk.
      throw new Error(`journal_mode is ${mode}, not wal (is the file on a network filesystem?)`);
    }
    // FULL: a commit is durable when it returns, which is what "2xx means
    // committed" rests on. Group commit keeps the fsync cost per batch.
    db.pragma(`synchronous = ${options.synchronous ?? 'FULL'}`);
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`);
    db.pragma('foreign_keys = ON');
    if (options.cacheKib !== undefined) db.pragma(`cache_size = -${Math.max(1, Math.floor(options.cacheKib))}`);
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

export function readSettings(db: Database.Database): ConnectionSettings {
  const levels = ['OFF', 'NORMAL', 'FULL', 'EXTRA'] as const;
  return {
    journalMode: String(db.pragma('journal_mode', { simple: true })),
    synchronous: levels[Number(db.pragma('synchronous', { simple: true }))] ?? 'OFF',
    foreignKeys: Number(db.pragma('foreign_keys', { simple: true })) === 1,
    busyTimeoutMs: Number(db.pragma('busy_timeout', { simple: true })),
    cacheKib: cacheKib(db),
  };
}

/** cache_size is KiB when negative, pages when positive. */
function cacheKib(db: Database.Database): number {
  const size = Number(db.pragma('cache_size', { simple: true }));
  return size < 0 ? -size : (size * Number(db.pragma('page_size', { simple: true }))) / 1024;
}

/**
 * A passive WAL checkpoint (copies committed pages back into the database
 * file without waiting for readers or blocking writers), for the metrics'
 * periodic checkpoint: `walFrames` in the WAL, `checkpointedFrames` copied;
 * `busy` when a reader or writer kept it from finishing. A WAL whose frames
 * are never all checkpointed grows without bound (a long-lived reader).
 */
export function checkpointWal(db: Database.Database): { busy: boolean; walFrames: number; checkpointedFrames: number } {
  const row = db.pragma('wal_checkpoint(PASSIVE)') as Array<{ busy: number; log: number; checkpointed: number }>;
  const result = row[0] ?? { busy: 0, log: 0, checkpointed: 0 };
  return { busy: result.busy !== 0, walFrames: Math.max(0, result.log), checkpointedFrames: Math.max(0, result.checkpointed) };
}
