/**
 * `drover backup create|verify|restore|pull|prune|list`: backups of the store
 * named by DROVER_DATABASE_URL. `create` works beside a running node (an
 * online, consistent copy); `restore` refuses while one runs on the target.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { DroverError } from '../../core/errors.js';
import { cliAudit } from '../../ops/audit/cli-trail.js';
import { cliActor } from '../../ops/audit/audit-trail.js';
import { takeBackup } from '../../ops/backup/create.js';
import { restoreBackup } from '../../ops/backup/restore.js';
import { DEFAULT_RETENTION, listBackups, pruneBackups } from '../../ops/backup/retention.js';
import { verifyBackup } from '../../ops/backup/verify.js';
import { splitTrustArgs, type NewKey } from '../../ops/backup/manifest-signature.js';
import { installationKeys, trustedKeys } from '../../ops/audit/node-key.js';
import { dataDirFor, sqlitePathOf } from '../../ops/data-dir.js';
import { openStore } from '../../store/open.js';
import { databaseUrlFromEnv } from './options.js';
import { registerBackupPull } from './backup-pull.js';
import { openRemote, registerBackupUpload, remoteOptions, splitBackupUrl, type RemoteFlags } from './backup-remote.js';
import { tmpdir } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';

const out = (line: string): void => void process.stdout.write(`${line}\n`);
const collect = (value: string, previous: string[]) => [...previous, value];

/** One line per key the backup carries that this node did not already trust. */
function printNewKeys(keys: readonly NewKey[], flag: string): void {
  for (const key of keys) {
    const role = key.signer ? 'signed the manifest' : 'signs audit records in it';
    out(`new key ${key.keyId} (${role}): ${key.named ? `named by ${flag}, used` : `not trusted here; pass ${flag} ${key.keyId} if you expect it`}`);
  }
}

function count(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number ≥ 0');
  return n;
}

function defaultDir(): string {
  return join(dataDirFor(databaseUrlFromEnv()), 'backups');
}

function mib(bytes: number): string {
  return `${(bytes / 1_048_576).toFixed(1)} MiB`;
}

export function registerBackupCommands(program: Command): void {
  const backup = program.command('backup').description('back up, verify, restore and prune backups of the store (DROVER_DATABASE_URL)');

  backup
    .command('create')
    .description('take a consistent backup now; safe while a node is running')
    .option('--out <dir>', 'directory that receives drover-backup-<time>/ (default: <data dir>/backups)')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { out?: string; json?: boolean }) => {
      const url = databaseUrlFromEnv();
      const file = sqlitePathOf(url);
      if (file !== null && !existsSync(file)) {
        throw new DroverError('store_unavailable', `there is no store at ${file}; set DROVER_DATABASE_URL to the database the node uses`);
      }
      const store = await openStore(url, { lock: false });
      try {
        const audit = cliAudit(store, url);
        const result = await takeBackup({
          store,
          outDir: opts.out ?? defaultDir(),
          source: url,
          nodeId: await store.getMeta('node_id'),
          auditKeys: installationKeys(dataDirFor(url)),
          signingKey: audit.trail.key,
          audit,
        });
        if (opts.json) return out(JSON.stringify({ path: result.path, bytes: result.bytes, manifest: result.manifest }, null, 2));
        const counts = Object.entries(result.manifest.counts).map(([t, n]) => `${t}=${n}`).join(' ');
        out(`backup written to ${result.path}`);
        out(`  ${mib(result.bytes)} in ${result.manifest.durationMs} ms; schema ${result.manifest.schemaVersion}; ${counts}`);
      } finally {
        await store.close();
      }
    });

  backup
    .command('verify <path>')
    .description('check a backup: checksums, integrity, schema version, row counts, audit chain; exit 1 if anything fails (PostgreSQL: restores a scratch copy on the server in DROVER_DATABASE_URL)')
    .option('--trust-key <file|fingerprint>', 'also trust this key: a public key file, or the fingerprint (ed25519:…) of a key the backup carries (repeatable); otherwise only the keys this data directory trusts', collect, [] as string[])
    .option('--json', 'print the result as JSON')
    .action(async (path: string, opts: { json?: boolean; trustKey: string[] }) => {
      const url = databaseUrlFromEnv();
      const { files, fingerprints } = splitTrustArgs(opts.trustKey);
      const result = await verifyBackup(path, { databaseUrl: url, trustedKeys: trustedKeys(dataDirFor(url), files), trustFingerprints: fingerprints });
      if (opts.json) out(JSON.stringify(result, null, 2));
      else {
        for (const check of result.checks) out(`${check.ok ? 'ok  ' : 'FAIL'}  ${check.name}: ${check.detail}`);
        printNewKeys(result.newKeys, '--trust-key');
      }
      if (!result.ok) {
        const failed = result.checks.filter((c) => !c.ok).map((c) => c.name);
        throw new DroverError('validation', `backup ${result.path} failed verification (${failed.join(', ')})`);
      }
      if (!opts.json) out(`backup ${result.path} is good`);
    });

  remoteOptions(
    backup
      .command('restore [path]')
      .description('verify a backup, then replace the store with it (the previous files are kept aside); the node must be stopped')
      .option('--from <s3url>', 'restore a backup from object storage: s3://bucket/prefix/drover-backup-<time> (downloaded, then verified)'),
  )
    .option('--trust-key <file|fingerprint>', 'verify with this key too, for this restore only (repeatable)', collect, [] as string[])
    .option('--trust-new-key <fingerprint>', 'trust this key the backup carries from now on (repeatable): the audit key of the node it came from, checked out of band', collect, [] as string[])
    .option('--json', 'print the result as JSON')
    .action(async (given: string | undefined, opts: RemoteFlags & { from?: string; json?: boolean; trustKey: string[]; trustNewKey: string[] }) => {
      const url = databaseUrlFromEnv();
      if ((given === undefined) === (opts.from === undefined)) throw new DroverError('validation', 'give the backup to restore: a directory, or --from s3://bucket/prefix/drover-backup-<time>');
      let path = given ?? '';
      let scratch: string | null = null;
      if (opts.from) {
        const { base, name } = splitBackupUrl(opts.from);
        const remote = await openRemote(base, opts);
        scratch = mkdtempSync(join(tmpdir(), 'drover-restore-'));
        try {
          path = await remote.download(name, scratch);
        } finally {
          remote.close();
        }
      }
      const result = await restoreBackup({ path, databaseUrl: url, dataDir: dataDirFor(url), actor: cliActor(), trustKeys: opts.trustKey, trustNewKeys: opts.trustNewKey }).finally(() => {
        if (scratch) rmSync(scratch, { recursive: true, force: true });
      });
      if (opts.json) return out(JSON.stringify({ ...result, verification: { ok: result.verification.ok, checks: result.verification.checks } }, null, 2));
      out(`restored ${result.verification.path} (taken ${result.verification.manifest?.createdAt}) into ${result.target}`);
      out(result.aside.length > 0 ? `  previous store kept at ${result.aside[0]}` : '  there was no previous store');
      if (result.migrated.length > 0) out(`  migrated to schema ${result.migrated.at(-1)}`);
      out(`  ${result.requeued} job(s) that were running at backup time are queued to run again`);
      for (const { keyId, file } of result.trustedKeyFiles) out(`  now trusting audit key ${keyId} (named by --trust-new-key): ${file}`);
      out('start the node to resume work');
    });

  registerBackupPull(backup);

  registerBackupUpload(backup);

  remoteOptions(
    backup
      .command('prune')
      .description('delete old backups, keeping the newest of each recent day, week and month (dry run unless --yes)')
      .option('--remote <s3url>', 'prune the backups in object storage instead: s3://bucket/prefix'),
  )
    .option('--dir <dir>', 'backup directory (default: <data dir>/backups)')
    .option('--keep-daily <n>', 'days to keep one backup of', count, DEFAULT_RETENTION.keepDaily)
    .option('--keep-weekly <n>', 'ISO weeks to keep one backup of', count, DEFAULT_RETENTION.keepWeekly)
    .option('--keep-monthly <n>', 'months to keep one backup of', count, DEFAULT_RETENTION.keepMonthly)
    .option('--yes', 'delete; without it, only print what would be deleted')
    .action(async (opts: RemoteFlags & { remote?: string; dir?: string; keepDaily: number; keepWeekly: number; keepMonthly: number; yes?: boolean }) => {
      const policy = { keepDaily: opts.keepDaily, keepWeekly: opts.keepWeekly, keepMonthly: opts.keepMonthly };
      const dir = opts.remote ?? opts.dir ?? defaultDir();
      let plan;
      if (opts.remote) {
        const remote = await openRemote(opts.remote, opts);
        try {
          plan = { ...(await remote.prune(policy, { dryRun: !opts.yes })), ignored: [] as string[] };
        } finally {
          remote.close();
        }
      } else plan = pruneBackups(dir, policy, { dryRun: !opts.yes });
      for (const entry of plan.keep) out(`keep    ${entry.name}  (${entry.reasons.join(', ')})`);
      for (const entry of plan.remove) out(`${opts.yes ? 'deleted' : 'delete '} ${entry.name}`);
      for (const name of plan.ignored) out(`ignore  ${name}  (not a complete drover backup)`);
      if (plan.remove.length === 0) out(`nothing to delete in ${dir}`);
      else if (!opts.yes) out(`dry run: ${plan.remove.length} backup(s) would be deleted; run again with --yes to delete them`);
    });

  remoteOptions(
    backup
      .command('list')
      .description('list the backups in a directory (or in object storage with --remote), newest first')
      .option('--remote <s3url>', 'list the complete backups in object storage: s3://bucket/prefix'),
  )
    .option('--dir <dir>', 'backup directory (default: <data dir>/backups)')
    .action(async (opts: RemoteFlags & { remote?: string; dir?: string }) => {
      if (opts.remote) {
        const remote = await openRemote(opts.remote, opts);
        try {
          for (const entry of await remote.list()) out(`${new Date(entry.at).toISOString()}  ${entry.url}`);
        } finally {
          remote.close();
        }
        return;
      }
      for (const entry of listBackups(opts.dir ?? defaultDir()).backups) out(`${new Date(entry.at).toISOString()}  ${entry.path}`);
    });
}
