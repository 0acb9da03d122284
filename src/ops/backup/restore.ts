/**
 * `drover backup restore`: verify the backup, put it where the store lives
 * (the previous files are renamed aside, never deleted), bring its schema up
 * to this binary's, requeue the jobs that were running when it was taken
 * (their workers are long gone; at-least-once means they run again), and
 * record the restore in the restored audit trail.
 *
 * Refuses while a node runs on the target. SQLite: the store's lock is taken
 * first and held until the restore is done, so no node can start halfway
 * through. PostgreSQL: no drover process may be connected to the schema.
 */
import { join } from 'node:path';
import { DroverError, toError } from '../../core/errors.js';
import { backupDriverFor } from '../../store/backup-driver.js';
import type { AuditStore, JobStore, StoreConnection } from '../../store/engine.js';
import { AuditTrail } from '../audit/audit-trail.js';
import { addTrustedKey, loadOrCreateNodeKey, trustedKeys } from '../audit/node-key.js';
import { FINGERPRINT_RE, splitTrustArgs } from './manifest-signature.js';
import { writeRestoreMarker } from '../audit/restore-marker.js';
import { sha256File } from './checksum.js';
import { verifyBackup, type BackupVerification } from './verify.js';

export interface RestoreOptions {
  /** The backup directory. */
  path: string;
  /** The store to restore into (`DROVER_DATABASE_URL`). */
  databaseUrl: string;
  /** The target's data directory (audit signing key, trusted keys). */
  dataDir: string;
  actor: string;
  /** PostgreSQL: the target schema; default `DROVER_PG_SCHEMA`, else `drover` (as `drover start`). */
  pgSchema?: string;
  /** Keys to verify with for this restore only: public key files or fingerprints of keys the backup carries (`--trust-key`). */
  trustKeys?: readonly string[];
  /** Fingerprints of keys the backup carries to trust from now on (`--trust-new-key`); no other new key is trusted. */
  trustNewKeys?: readonly string[];
  clock?: () => number;
}

export interface RestoreResult {
  target: string;
  verification: BackupVerification;
  /** The previous store's files, renamed; empty when there was none. */
  aside: string[];
  /** Jobs that were running at backup time, queued again. */
  requeued: number;
  /** Migrations applied to bring the copy up to this binary's schema. */
  migrated: number[];
  /** New keys from the backup now trusted here (named by `--trust-new-key`), with the file written. */
  trustedKeyFiles: Array<{ keyId: string; file: string }>;
}

/**
 * @example
 * const result = await restoreBackup({ path, databaseUrl: './data/drover.db', dataDir: './data', actor: cliActor() });
 * result.aside; // ['/…/drover.db.before-restore-2026-11-23T21-30-00-000Z', …]
 */
export async function restoreBackup(options: RestoreOptions): Promise<RestoreResult> {
  const clock = options.clock ?? Date.now;
  const { files, fingerprints } = splitTrustArgs(options.trustKeys ?? []);
  const newKeys = options.trustNewKeys ?? [];
  const malformed = newKeys.filter((k) => !FINGERPRINT_RE.test(k));
  if (malformed.length > 0) throw new DroverError('validation', `--trust-new-key takes a key fingerprint like ed25519:3f9a0c1d2e3f4a5b (as \`drover audit pubkey --json\` and \`drover backup verify\` print it), got ${malformed.join(', ')}`);
  const verification = await verifyBackup(options.path, {
    databaseUrl: options.databaseUrl,
    trustedKeys: trustedKeys(options.dataDir, files),
    trustFingerprints: [...fingerprints, ...newKeys],
    trustFlag: '--trust-new-key',
  });
  const carried = new Set(verification.newKeys.map((k) => k.keyId));
  const absent = newKeys.filter((k) => !carried.has(k) && !trustedKeys(options.dataDir).has(k));
  if (absent.length > 0) throw new DroverError('validation', `--trust-new-key ${absent.join(', ')}: the backup carries no such key (it carries ${[...carried].join(', ') || 'no key this node does not already trust'}); nothing was changed`);
  if (!verification.ok || !verification.manifest) {
    const failed = verification.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
    throw new DroverError('validation', `backup ${verification.path} did not verify, nothing was changed:\n  ${failed.join('\n  ')}`);
  }
  const manifest = verification.manifest;
  const driver = backupDriverFor(options.databaseUrl);
  if (driver.engine !== manifest.engine) {
    throw new DroverError('validation', `the backup is of a ${manifest.engine} store but DROVER_DATABASE_URL names a ${driver.engine} store`);
  }
  const stamp = new Date(clock()).toISOString().replace(/:/g, '-').replace('.', '-');
  const main = manifest.files[0]!;
  // Refuses while a node runs on the target; the previous store is moved aside, never deleted.
  const placed = await driver.place({
    file: join(verification.path, main.name),
    databaseUrl: options.databaseUrl,
    stamp,
    ...(options.pgSchema ? { schema: options.pgSchema } : {}),
    archivedSchema: manifest.postgres?.schema ?? 'drover',
    checkCopy: async (file) => {
      const sha = await sha256File(file);
      if (sha !== main.sha256) throw new DroverError('store_unavailable', `the copy at ${file} does not match the backup (sha256 ${sha}); is the disk healthy?`);
    },
  });

  try {
    const store = await placed.open({ clock });
    return await finish(store, options, verification, placed.target, placed.aside, clock);
  } catch (error) {
    throw new DroverError('store_unavailable', `the backup was put in place at ${placed.target} but finishing the restore failed: ${toError(error).message}; the previous store is at ${placed.aside.join(', ') || '(none)'}`, { cause: error });
  } finally {
    placed.release();
  }
}

/** After the copy is in place: migrate, requeue what was running, trust the backup's audit keys, record the restore. */
async function finish(
  store: StoreConnection & JobStore & AuditStore,
  options: RestoreOptions,
  verification: BackupVerification,
  target: string,
  aside: string[],
  clock: () => number,
): Promise<RestoreResult> {
  const manifest = verification.manifest!;
  try {
    const status = await store.migrate();
    const requeued = await store.reclaimAll();
    // Only the new keys the operator named: a key is never trusted because a backup lists it.
    const trustedKeyFiles = verification.newKeys
      .filter((k) => (options.trustNewKeys ?? []).includes(k.keyId))
      .flatMap((k) => {
        const file = addTrustedKey(options.dataDir, k.publicKey);
        return file ? [{ keyId: k.keyId, file }] : [];
      });
    const trail = new AuditTrail({ store, key: loadOrCreateNodeKey(options.dataDir), clock });
    const record = await trail.record({
      actor: options.actor,
      action: 'backup.restore',
      target: `store:${target}`,
      before: { aside },
      after: { backup: verification.path, takenAt: manifest.createdAt, schemaVersion: status.current, requeuedJobs: requeued.length },
    });
    // The one thing that lets the node's audit export start over (export.ts): a restore, recorded outside the store.
    writeRestoreMarker(options.dataDir, { seq: record.seq, hash: record.hash, at: record.time, backup: verification.path });
    return { target, verification, aside, requeued: requeued.length, migrated: status.applied, trustedKeyFiles };
  } finally {
    await store.close();
  }
}
