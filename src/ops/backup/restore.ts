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
import type { StorageEngine } from '../../store/engine.js';
import { engineFor, openStore } from '../../store/open.js';
import { droverConnections, moveSchemaAside, moveSchemaBack, restoreArchive } from '../../store/postgres/backup-restore.js';
import { placeSqliteBackup } from '../../store/sqlite/backup.js';
import { AuditTrail } from '../audit/audit-trail.js';
import { addTrustedKey, loadOrCreateNodeKey, trustedKeys } from '../audit/node-key.js';
import { FINGERPRINT_RE, splitTrustArgs } from './manifest-signature.js';
import { writeRestoreMarker } from '../audit/restore-marker.js';
import { sqlitePathOf } from '../data-dir.js';
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
  const targetEngine = engineFor(options.databaseUrl);
  if (targetEngine !== manifest.engine) {
    throw new DroverError('validation', `the backup is of a ${manifest.engine} store but DROVER_DATABASE_URL names a ${targetEngine} store`);
  }
  const stamp = new Date(clock()).toISOString().replace(/:/g, '-').replace('.', '-');
  const target = sqlitePathOf(options.databaseUrl);
  if (target === null) return restorePostgres(options, verification, stamp, clock);

  const main = manifest.files[0]!;
  let placed: Awaited<ReturnType<typeof placeSqliteBackup>>;
  try {
    placed = await placeSqliteBackup({
      from: join(verification.path, main.name),
      target,
      stamp,
      checkCopy: async (file) => {
        const sha = await sha256File(file);
        if (sha !== main.sha256) throw new DroverError('store_unavailable', `the copy at ${file} does not match the backup (sha256 ${sha}); is the disk healthy?`);
      },
    });
  } catch (error) {
    if (error instanceof DroverError && typeof error.extensions.pid === 'number') {
      const pid = error.extensions.pid;
      throw new DroverError(
        'store_unavailable',
        `cannot restore: ${target} is in use by drover pid ${pid}. Stop that node first ` +
          `(\`systemctl stop drover\`, or \`kill -TERM ${pid}\`: it drains running jobs and exits), then run the restore again.`,
        { cause: error, extensions: error.extensions },
      );
    }
    throw error;
  }

  try {
    // We hold the lock; open beside it.
    const store = await openStore(options.databaseUrl, { lock: false, clock });
    return await finish(store, options, verification, target, placed.aside, clock);
  } catch (error) {
    throw new DroverError('store_unavailable', `the backup was put in place at ${target} but finishing the restore failed: ${toError(error).message}; the previous files are at ${placed.aside.join(', ') || '(none)'}`, { cause: error });
  } finally {
    placed.lock.release();
  }
}

/**
 * PostgreSQL: refuse while any drover process is connected to the schema,
 * rename the live schema aside (`<schema>_before_restore_<time>`, kept in the
 * database), pg_restore the archive, then finish as for SQLite. A failed
 * pg_restore puts the old schema back.
 */
async function restorePostgres(options: RestoreOptions, verification: BackupVerification, stamp: string, clock: () => number): Promise<RestoreResult> {
  const manifest = verification.manifest!;
  const url = options.databaseUrl;
  const schema = options.pgSchema ?? (process.env.DROVER_PG_SCHEMA || 'drover');
  const archived = manifest.postgres?.schema ?? 'drover';
  if (archived !== schema) {
    throw new DroverError('validation', `the backup holds schema ${archived} but the target is schema ${schema}; set DROVER_PG_SCHEMA=${archived} to restore it (pg_restore cannot rename a schema)`);
  }
  const connected = await droverConnections(url, schema);
  if (connected.length > 0) {
    throw new DroverError(
      'store_unavailable',
      `cannot restore: ${connected.length} drover connection(s) use schema ${schema} (backend pids ${connected.map((c) => c.pid).join(', ')}). ` +
        'Stop every node on this store (`systemctl stop drover` on each host; they drain and exit) and any drover command using it, then run the restore again.',
      { extensions: { connections: connected } },
    );
  }
  const aside = `${schema.slice(0, 30)}_before_restore_${stamp.replace(/\D/g, '').slice(0, 14)}`;
  const moved = await moveSchemaAside(url, schema, aside);
  try {
    await restoreArchive(join(verification.path, manifest.files[0]!.name), url);
  } catch (error) {
    if (moved) await moveSchemaBack(url, aside, schema);
    throw new DroverError('store_unavailable', `pg_restore into schema ${schema} failed, the previous schema is back in place: ${toError(error).message}`, { cause: error });
  }
  const store = await openStore(url, { clock, postgres: { schema } });
  return finish(store, options, verification, `schema ${schema}`, moved ? [`schema ${aside}`] : [], clock);
}

/** After the copy is in place: migrate, requeue what was running, trust the backup's audit keys, record the restore. */
async function finish(
  store: StorageEngine,
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
