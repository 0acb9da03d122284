/**
 * A backup is a directory `drover-backup-<UTC time>/` holding the store's
 * copy and `manifest.json`, which says what the copy is and how to check it.
 * A backup being written lives in `.drover-backup-….partial/` and is renamed
 * when complete, so a crash mid-backup never leaves something that looks whole.
 */
import { closeSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { DroverError, toError } from '../../core/errors.js';
import type { ManifestSignature } from './manifest-signature.js';

export const MANIFEST_FILE = 'manifest.json';
export const MANIFEST_FORMAT = 'drover-backup/1';
export const BACKUP_PREFIX = 'drover-backup-';

export interface ManifestFile {
  name: string;
  bytes: number;
  sha256: string;
}

export interface BackupManifest {
  format: typeof MANIFEST_FORMAT;
  engine: 'sqlite' | 'postgres';
  schemaVersion: number;
  droverVersion: string;
  /** When the copy was taken (ISO 8601 UTC). */
  createdAt: string;
  durationMs: number;
  /** The store it was taken from (a path; a URL without its password). */
  source: string;
  /** The node that owned the store, when known. */
  nodeId: string | null;
  /** Rows per table, counted in the copy. */
  counts: Record<string, number>;
  files: ManifestFile[];
  /**
   * Public keys that sign this installation's audit trail. Candidates only: a
   * verifier uses one when it already trusts it or an operator names its fingerprint.
   */
  auditKeys: Array<{ keyId: string; publicKey: string }>;
  /** The taking node's audit key signs everything above (manifest-signature.ts); absent on unsigned (old or forged) manifests. */
  signature?: ManifestSignature;
  /** PostgreSQL: the schema the archive holds. */
  postgres?: { schema: string };
}

/** The directory name for a backup taken at `ms`: sortable, and safe on every filesystem. */
export function backupName(ms: number): string {
  return BACKUP_PREFIX + new Date(ms).toISOString().replace(/:/g, '-').replace('.', '-');
}

/** Parse `drover-backup-2026-11-23T21-12-30-123Z` back to its time (ms), or null. */
export function timeFromName(name: string): number | null {
  const m = /^drover-backup-(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2})-(\d{3})Z$/.exec(name);
  if (!m) return null;
  const ms = Date.parse(`${m[1]}T${m[2]}:${m[3]}:${m[4]}.${m[5]}Z`);
  return Number.isNaN(ms) ? null : ms;
}

export function writeManifest(dir: string, manifest: BackupManifest): void {
  const fd = openSync(join(dir, MANIFEST_FILE), 'wx', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(manifest, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Read and shape-check a manifest; throws `validation` naming what is wrong. */
export function readManifest(dir: string): BackupManifest {
  const file = join(dir, MANIFEST_FILE);
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new DroverError('validation', `cannot read ${file}: ${toError(error).message}`, { cause: error });
  }
  const m = value as Partial<BackupManifest> | null;
  const problems: string[] = [];
  if (!m || typeof m !== 'object') problems.push('not a JSON object');
  else {
    if (m.format !== MANIFEST_FORMAT) problems.push(`format is ${JSON.stringify(m.format)}, expected "${MANIFEST_FORMAT}"`);
    if (m.engine !== 'sqlite' && m.engine !== 'postgres') problems.push('engine must be "sqlite" or "postgres"');
    if (!Number.isInteger(m.schemaVersion)) problems.push('schemaVersion must be an integer');
    if (typeof m.createdAt !== 'string' || Number.isNaN(Date.parse(m.createdAt))) problems.push('createdAt must be an ISO time');
    if (!m.counts || typeof m.counts !== 'object') problems.push('counts must be an object');
    if (!Array.isArray(m.files) || m.files.length === 0) problems.push('files must list at least one file');
    else if (m.files.some((f) => typeof f?.name !== 'string' || f.name.includes('/') || f.name.includes('\\') || typeof f.sha256 !== 'string' || !Number.isInteger(f.bytes))) {
      problems.push('each file needs a plain name, bytes and sha256');
    }
    if (!Array.isArray(m.auditKeys)) problems.push('auditKeys must be an array');
  }
  if (problems.length > 0) throw new DroverError('validation', `${file} is not a Drover backup manifest: ${problems.join('; ')}`);
  return m as BackupManifest;
}

/** The store file inside a backup. */
export function storeFileName(engine: BackupManifest['engine']): string {
  return engine === 'sqlite' ? 'drover.db' : 'drover.dump';
}
