/**
 * `drover backup verify`: prove a backup is good before anyone needs it.
 * Checks, in order: the manifest; every file's size and SHA-256; then, on the
 * copy itself (opened read-only), the engine's integrity check, that its
 * schema version is the manifest's and one this binary knows, that every
 * table's row count matches the manifest, and that the audit trail in it
 * verifies. Each check is reported by name; any failure fails the whole.
 *
 * A PostgreSQL archive is checked by restoring it into a scratch database on
 * the server (`pg_restore` rebuilds and validates every constraint), reading
 * it there, and dropping the scratch database.
 */
import { existsSync, statSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { join, resolve } from 'node:path';
import { toError } from '../../core/errors.js';
import { backupDriver, type BackupContents } from '../../store/backup-driver.js';
import { verifyStoredTrail } from '../audit/verify.js';
import { sha256File } from './checksum.js';
import { readManifest, type BackupManifest } from './manifest.js';
import { judgeBackupKeys, type NewKey } from './manifest-signature.js';

export interface BackupCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface BackupVerification {
  ok: boolean;
  path: string;
  manifest: BackupManifest | null;
  checks: BackupCheck[];
  /** Keys the backup carries that were not already trusted, each with whether it was named (and so used). */
  newKeys: NewKey[];
}

export interface VerifyOptions {
  /** Keys already trusted: the data directory's (`trustedKeys(dataDir)`) and any given as files. */
  trustedKeys?: ReadonlyMap<string, KeyObject>;
  /** Fingerprints of keys the backup carries that the operator vouches for (`--trust-key ed25519:…`). */
  trustFingerprints?: readonly string[];
  /** How to name a key in the advice (`--trust-key` for verify, `--trust-new-key` for restore). */
  trustFlag?: string;
  /** PostgreSQL backups: the server to restore a scratch copy on. */
  databaseUrl?: string;
}

/**
 * @example
 * const result = await verifyBackup('./data/backups/drover-backup-2026-11-23T21-12-30-123Z');
 * result.ok; // false
 * result.checks.find((c) => !c.ok); // { name: 'sha256 drover.db', ok: false, detail: 'expected 9f86…, found 1b4f…' }
 */
export async function verifyBackup(path: string, options: VerifyOptions = {}): Promise<BackupVerification> {
  const dir = resolve(path);
  const checks: BackupCheck[] = [];
  let newKeys: NewKey[] = [];
  const done = (manifest: BackupManifest | null): BackupVerification => ({ ok: checks.every((c) => c.ok), path: dir, manifest, checks, newKeys });
  const check = (name: string, ok: boolean, detail: string) => checks.push({ name, ok, detail });

  let manifest: BackupManifest;
  try {
    manifest = readManifest(dir);
    check('manifest', true, `${manifest.engine}, schema ${manifest.schemaVersion}, taken ${manifest.createdAt} by drover ${manifest.droverVersion}`);
  } catch (error) {
    check('manifest', false, toError(error).message);
    return done(null);
  }
  const trust = judgeBackupKeys(manifest, options.trustedKeys ?? new Map(), options.trustFingerprints ?? [], options.trustFlag ?? '--trust-key');
  newKeys = trust.newKeys;
  check('signature', trust.signature.ok, trust.signature.detail);

  let filesOk = true;
  for (const file of manifest.files) {
    const at = join(dir, file.name);
    if (!existsSync(at)) {
      check(`sha256 ${file.name}`, false, `${at} is missing`);
      filesOk = false;
      continue;
    }
    const size = statSync(at).size;
    const sha = await sha256File(at);
    const ok = size === file.bytes && sha === file.sha256;
    filesOk &&= ok;
    check(`sha256 ${file.name}`, ok, ok ? `${size} bytes, ${sha}` : `expected ${file.bytes} bytes with sha256 ${file.sha256}, found ${size} bytes with ${sha}: the file was changed or damaged after the backup`);
  }
  // A damaged file is not opened: reading a corrupt database proves nothing more and may create side files in the backup.
  if (!filesOk) {
    check('contents', false, 'not checked: the files do not match the manifest');
    return done(manifest);
  }

  const main = manifest.files[0]!;
  const keys = trust.keys;
  const flag = options.trustFlag ?? '--trust-key';
  // The engine's driver opens the copy (PostgreSQL: in a scratch database) and runs its own checks first.
  const driver = backupDriver(manifest.engine);
  await driver.inspect(
    join(dir, main.name),
    { schema: manifest.postgres?.schema ?? 'drover', ...(options.databaseUrl ? { databaseUrl: options.databaseUrl } : {}) },
    check,
    (contents) => checkContents(contents, driver.latestSchemaVersion(), manifest, keys, check, flag),
  );
  return done(manifest);
}

type Check = (name: string, ok: boolean, detail: string) => void;

/** Schema version, row counts and audit chain of the restored or opened copy against the manifest. */
async function checkContents(contents: BackupContents, latest: number, manifest: BackupManifest, keys: ReadonlyMap<string, KeyObject>, check: Check, flag: string): Promise<void> {
  const { schemaVersion: version, counts } = contents;
  check(
    'schema version',
    version === manifest.schemaVersion && version >= 1 && version <= latest,
    version > latest
      ? `schema ${version} is newer than this drover knows (${latest}); verify and restore with a newer drover`
      : version !== manifest.schemaVersion
        ? `the copy is at schema ${version}, the manifest says ${manifest.schemaVersion}`
        : `${version} (this drover knows up to ${latest})`,
  );

  const tables = new Set([...Object.keys(counts), ...Object.keys(manifest.counts)]);
  const wrong = [...tables].sort().filter((t) => counts[t] !== manifest.counts[t]);
  check(
    'row counts',
    wrong.length === 0,
    wrong.length === 0
      ? Object.entries(counts).map(([t, n]) => `${t}=${n}`).join(' ')
      : wrong.map((t) => `${t}: manifest ${manifest.counts[t] ?? 'none'}, copy ${counts[t] ?? 'none'}`).join('; '),
  );

  const trail = await verifyStoredTrail(contents.audit, keys, contents.label);
  check(
    'audit trail',
    trail.ok,
    trail.ok
      ? `${trail.records} records, chain and signatures intact${trail.records > 0 ? ` (signers: ${trail.signers.join(', ')})` : ''}`
      : `record ${trail.fault?.seq ?? '?'}: ${untrustedHint(trail.fault?.reason ?? '', flag)}`,
  );
}

/** In a backup, an untrusted signer is named with the command's own flag, not `--pubkey`. */
function untrustedHint(reason: string, flag: string): string {
  const m = /^signed by (\S+), which is not a trusted key/.exec(reason);
  return m ? `signed by ${m[1]}, which this node does not trust; if you expect that key, pass ${flag} ${m[1]}` : reason;
}
