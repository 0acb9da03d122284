/**
 * The record of a restore that the audit exporter trusts. `drover backup
 * restore` writes `audit-restored.json` into the data directory, naming the
 * `backup.restore` record it appended (seq and hash). On its next start the
 * exporter may set the old export aside only if this file names a record the
 * store holds; any other break between export and store is refused.
 *
 * The file lives beside the signing key, outside the store: whoever can only
 * write the database (and so can truncate the trail) cannot write it.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export const RESTORE_MARKER = 'audit-restored.json';

export interface RestoreMarker {
  /** The `backup.restore` record in the restored store. */
  seq: number;
  hash: string;
  /** When the restore ran (ISO 8601). */
  at: string;
  /** The backup directory restored from. */
  backup: string;
}

/**
 * @example
 * writeRestoreMarker(dataDir, { seq: 31, hash: 'ab…', at: new Date().toISOString(), backup: path });
 */
export function writeRestoreMarker(dataDir: string, marker: RestoreMarker): string {
  const file = join(dataDir, RESTORE_MARKER);
  const temp = `${file}.${process.pid}.tmp`;
  const fd = openSync(temp, 'w', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(marker, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, file);
  return file;
}

/** The marker in `dataDir`, or null when there is none or it cannot be read. */
export function readRestoreMarker(dataDir: string): RestoreMarker | null {
  const file = join(dataDir, RESTORE_MARKER);
  if (!existsSync(file)) return null;
  try {
    const value = JSON.parse(readFileSync(file, 'utf8')) as Partial<RestoreMarker>;
    if (!Number.isSafeInteger(value.seq) || typeof value.hash !== 'string') return null;
    return { seq: value.seq!, hash: value.hash, at: String(value.at ?? ''), backup: String(value.backup ?? '') };
  } catch {
    return null;
  }
}

/** Move the marker into `dir` (the superseded export it explains), or drop it when `dir` is null. */
export function consumeRestoreMarker(dataDir: string, dir: string | null): void {
  const file = join(dataDir, RESTORE_MARKER);
  if (!existsSync(file)) return;
  if (dir) renameSync(file, join(dir, RESTORE_MARKER));
  else rmSync(file, { force: true });
}
