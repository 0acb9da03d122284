/**
 * Taking a backup of a live store: the engine writes a consistent copy, the
 * copy is hashed and described in a manifest, and the finished directory
 * appears under its final name in one rename. The time of the last success
 * is kept in the store (`backup_last_success_at`) so a node reports it in
 * `drover_backup_last_success_timestamp_seconds` whoever took the backup.
 */
import { chmodSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { toError } from '../../core/errors.js';
import type { BackupStore, MetaStore } from '../../store/engine.js';
import { VERSION } from '../../version.js';
import type { AuditTrail } from '../audit/audit-trail.js';
import type { NodeKey } from '../audit/node-key.js';
import { signManifest } from './manifest-signature.js';
import { sha256File } from './checksum.js';
import { backupName, storeFileName, writeManifest, type BackupManifest } from './manifest.js';

/** Store metadata key holding the last successful backup time (ms). */
export const LAST_SUCCESS_META = 'backup_last_success_at';

export interface TakeBackupOptions {
  /** Writes the copy, and keeps the time of the last success. */
  store: BackupStore & MetaStore;
  /** Directory that receives `drover-backup-<time>/`; created if missing. */
  outDir: string;
  /** Where the store is, for the manifest (a URL is recorded without its password). */
  source: string;
  nodeId?: string | null;
  /** Public keys of this installation's audit trail, recorded in the manifest. */
  auditKeys: Array<{ keyId: string; publicKey: string }>;
  /** Signs the manifest: the node's audit key (`loadOrCreateNodeKey(dataDir)`). */
  signingKey: NodeKey;
  clock?: () => number;
  /** Keep the time as the installation's last backup (default true; a snapshot, which expires, does not). */
  recordSuccess?: boolean;
  /** Record `backup.create` in the audit trail as this actor. */
  audit?: { trail: AuditTrail; actor: string } | null;
}

export interface BackupResult {
  path: string;
  manifest: BackupManifest;
  /** Bytes of every file in the backup. */
  bytes: number;
}

/**
 * @example
 * const { path, manifest } = await takeBackup({ store, outDir: './data/backups', source: './data/drover.db', auditKeys: [], signingKey: loadOrCreateNodeKey('./data') });
 */
export async function takeBackup(options: TakeBackupOptions): Promise<BackupResult> {
  const clock = options.clock ?? Date.now;
  const started = clock();
  const startedPerf = performance.now();
  // Backups hold payloads and webhook secrets: only drover's user may read them.
  mkdirSync(options.outDir, { recursive: true, mode: 0o700 });
  let name = backupName(started);
  for (let n = 2; existsSync(join(options.outDir, name)); n++) name = `${backupName(started)}-${n}`;
  const partial = join(options.outDir, `.${name}.partial`);
  const final = join(options.outDir, name);
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true, mode: 0o700 });
  try {
    const engine = options.store.capabilities.engine;
    const fileName = storeFileName(engine);
    const snapshot = await options.store.backupTo(join(partial, fileName));
    const bytes = statSync(join(partial, fileName)).size;
    const unsigned: BackupManifest = {
      format: 'drover-backup/1',
      engine,
      schemaVersion: snapshot.schemaVersion,
      droverVersion: VERSION,
      createdAt: new Date(started).toISOString(),
      durationMs: Math.round(performance.now() - startedPerf),
      source: redact(options.source),
      nodeId: options.nodeId ?? null,
      counts: snapshot.counts,
      files: [{ name: fileName, bytes, sha256: await sha256File(join(partial, fileName)) }],
      auditKeys: options.auditKeys,
      ...(engine === 'postgres' ? { postgres: { schema: snapshot.schema ?? 'drover' } } : {}),
    };
    const manifest = signManifest(unsigned, options.signingKey);
    writeManifest(partial, manifest);
    // The engine's copy (SQLite backup API, pg_dump) is created with the process umask.
    for (const name of readdirSync(partial)) chmodSync(join(partial, name), 0o600);
    chmodSync(partial, 0o700);
    fsyncDir(partial);
    renameSync(partial, final);
    fsyncDir(options.outDir);
    if (options.recordSuccess !== false) await options.store.setMeta(LAST_SUCCESS_META, String(started));
    if (options.audit) {
      await options.audit.trail.record({
        actor: options.audit.actor,
        action: options.recordSuccess === false ? 'snapshot.create' : 'backup.create',
        target: `backup:${name}`,
        after: { path: final, bytes, schemaVersion: manifest.schemaVersion, counts: manifest.counts },
      });
    }
    return { path: final, manifest, bytes };
  } catch (error) {
    rmSync(partial, { recursive: true, force: true });
    throw toError(error);
  }
}

/**
 * When the last backup succeeded (ms), for `drover_backup_last_success_timestamp_seconds`; null if never.
 *
 * @example
 * const at = await lastBackupSuccess(runtime.store);
 * gauge.set(at === null ? 0 : at / 1000);
 */
export async function lastBackupSuccess(store: Pick<MetaStore, 'getMeta'>): Promise<number | null> {
  const value = await store.getMeta(LAST_SUCCESS_META);
  const ms = value === null ? Number.NaN : Number(value);
  return Number.isFinite(ms) ? ms : null;
}

function redact(source: string): string {
  return source.replace(/^(postgres(?:ql)?:\/\/[^:/@]*):[^@]*@/i, '$1:***@');
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
