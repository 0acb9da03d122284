/**
 * Issue 21 §3: backups that leave the box, against a real S3-compatible
 * server started here (S3rver, @20minutes' maintained fork: it installs from
 * npm, runs in-process, and checks SigV4 signatures like S3 does). The CLI is
 * run as users run it (bin/drover); the schedule is driven as the node drives it.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// @ts-expect-error: S3rver ships no types; it is a test peer only.
import S3rver from '@20minutes/s3rver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installationKeys, loadOrCreateNodeKey } from '../../src/ops/audit/node-key.js';
import { AuditTrail } from '../../src/ops/audit/audit-trail.js';
import { takeBackup } from '../../src/ops/backup/create.js';
import { RemoteBackups } from '../../src/ops/backup/remote.js';
import { REMOTE_SUCCESS_META, VERIFY_SUCCESS_META, BackupSchedule } from '../../src/ops/backup/schedule.js';
import { openStore } from '../../src/store/open.js';
import type { StorageEngine } from '../../src/store/engine.js';
import { drover } from './cli.js';

const work = mkdtempSync(join(tmpdir(), 'drover-s3-'));
let s3: { close(cb?: () => void): void };
let endpoint: string;
let store: StorageEngine;
const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
const idFile = join(work, 'key-id');
const secretFile = join(work, 'secret');
const dataDir = join(work, 'node');

beforeAll(async () => {
  // S3rver canonicalises a bucket-level request's path without the trailing slash the AWS SDK v3 signs
  // (object requests verify), so its signature check is relaxed; the access key id is still checked.
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: join(work, 's3'), configureBuckets: [{ name: 'drover-backups' }], allowMismatchedSignatures: true });
  const address = (await server.run()) as AddressInfo;
  s3 = server;
  endpoint = `http://127.0.0.1:${address.port}`;
  writeFileSync(idFile, `${credentials.accessKeyId}\n`, { mode: 0o600 });
  writeFileSync(secretFile, `${credentials.secretAccessKey}\n`, { mode: 0o600 });
  store = await openStore(join(dataDir, 'drover.db'));
  await store.migrate();
  await store.enqueue(Array.from({ length: 50 }, (_, i) => ({ handler: 'h', queue: 'default', payload: { i }, priority: 0, runAt: Date.now(), maxAttempts: 3 })));
});

afterAll(async () => {
  await store?.close();
  await new Promise<void>((resolve) => (s3 ? s3.close(() => resolve()) : resolve()));
  rmSync(work, { recursive: true, force: true });
});

const remoteFlags = () => ['--endpoint', endpoint, '--access-key-id-file', idFile, '--secret-access-key-file', secretFile];

async function backupAt(iso: string): Promise<string> {
  const key = loadOrCreateNodeKey(dataDir);
  const { path } = await takeBackup({ store, outDir: join(work, 'local'), source: 'test', auditKeys: installationKeys(dataDir), signingKey: key, clock: () => Date.parse(iso) });
  return path;
}

describe('backups in S3-compatible object storage', () => {
  it('uploads with the CLI, lists remotely, prunes remotely with the same policy, and restores from s3:// into a new store', { timeout: 120_000 }, async () => {
    const days = ['2026-11-28T03:00:00.000Z', '2026-11-29T03:00:00.000Z', '2026-11-30T03:00:00.000Z'];
    for (const day of days) {
      const path = await backupAt(day);
      const up = await drover(['backup', 'upload', path, '--remote', 's3://drover-backups/prod', ...remoteFlags()], {});
      expect(up.code, up.stderr).toBe(0);
      expect(up.stdout).toMatch(/^uploaded and checked: s3:\/\/drover-backups\/prod\/drover-backup-/);
    }
    const listed = await drover(['backup', 'list', '--remote', 's3://drover-backups/prod', ...remoteFlags()], {});
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout.trim().split('\n').map((l) => l.split('  ')[0])).toEqual([...days].reverse());

    const dry = await drover(['backup', 'prune', '--remote', 's3://drover-backups/prod', '--keep-daily', '2', '--keep-weekly', '0', '--keep-monthly', '0', ...remoteFlags()], {});
    expect(dry.stdout).toMatch(/dry run: 1 backup\(s\) would be deleted/);
    const pruned = await drover(['backup', 'prune', '--remote', 's3://drover-backups/prod', '--keep-daily', '2', '--keep-weekly', '0', '--keep-monthly', '0', '--yes', ...remoteFlags()], {});
    expect(pruned.code, pruned.stderr).toBe(0);
    const remote = await RemoteBackups.open({ url: 's3://drover-backups/prod', endpoint, credentials });
    try {
      expect((await remote.list()).map((b) => new Date(b.at).toISOString())).toEqual([days[2], days[1]]);
    } finally {
      remote.close();
    }

    const target = join(work, 'restored', 'drover.db');
    const newest = `s3://drover-backups/prod/drover-backup-2026-11-30T03-00-00-000Z`;
    const restored = await drover(['backup', 'restore', '--from', newest, '--trust-new-key', loadOrCreateNodeKey(dataDir).keyId, ...remoteFlags()], { DROVER_DATABASE_URL: target });
    expect(restored.code, restored.stdout + restored.stderr).toBe(0);
    const copy = await openStore(target, { lock: false });
    try {
      expect((await copy.listJobs({ limit: 1000 })).length).toBe(50);
    } finally {
      await copy.close();
    }

    const missing = await drover(['backup', 'restore', '--from', 's3://drover-backups/prod/drover-backup-2020-01-01T00-00-00-000Z', ...remoteFlags()], { DROVER_DATABASE_URL: join(work, 'nothing', 'drover.db') });
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/no complete backup at s3:\/\/drover-backups\/prod\/drover-backup-2020/);
    const strangerFile = join(work, 'stranger');
    writeFileSync(strangerFile, 'AKIASTRANGER\n', { mode: 0o600 });
    const wrongKey = await drover(['backup', 'list', '--remote', 's3://drover-backups/prod', '--endpoint', endpoint, '--access-key-id-file', strangerFile, '--secret-access-key-file', secretFile], {});
    expect(wrongKey.code).not.toBe(0);
    expect(wrongKey.stderr).toMatch(/Access Key Id you provided does not exist/i);
  });

  it('detects a remote copy that differs from the manifest', { timeout: 60_000 }, async () => {
    const path = await backupAt('2026-12-01T03:00:00.000Z');
    const remote = await RemoteBackups.open({ url: 's3://drover-backups/tamper', endpoint, credentials });
    try {
      const uploaded = await remote.upload(path);
      // Someone (or a broken store) replaces the copy after the upload.
      const sdk = await import('@aws-sdk/client-s3');
      const client = new sdk.S3Client({ region: 'us-east-1', endpoint, forcePathStyle: true, credentials });
      await client.send(new sdk.PutObjectCommand({ Bucket: 'drover-backups', Key: `tamper/${uploaded.name}/drover.db`, Body: Buffer.from('not the store') }));
      client.destroy();
      const manifest = JSON.parse(await (await import('node:fs/promises')).readFile(join(path, 'manifest.json'), 'utf8'));
      await expect(remote.verifyUploaded(uploaded.name, manifest)).rejects.toThrow(/is 13 bytes with SHA-256 [0-9a-f]{64}; the manifest says/);
    } finally {
      remote.close();
    }
  });

  it('the schedule verifies each backup, uploads it, prunes remotely and records both; an unreachable store of objects fails only the upload', { timeout: 120_000 }, async () => {
    const key = loadOrCreateNodeKey(dataDir);
    let now = Date.parse('2026-12-02T03:00:00Z');
    const errors: Array<[string | undefined, string]> = [];
    const base = {
      store,
      everyMs: 86_400_000,
      dir: join(work, 'scheduled'),
      retention: { keepDaily: 1, keepWeekly: 0, keepMonthly: 0 },
      source: 'test',
      nodeId: 'n1',
      auditKeys: () => installationKeys(dataDir),
      audit: new AuditTrail({ store, key }),
      clock: () => now,
      verify: { dataDir, databaseUrl: join(dataDir, 'drover.db') },
      onSuccess: () => undefined,
      onError: (error: Error, task?: string) => errors.push([task, error.message]),
    };
    const schedule = new BackupSchedule({ ...base, remote: { url: 's3://drover-backups/scheduled', endpoint, credentials } });
    for (let day = 0; day < 2; day++) {
      await schedule.runNow();
      now += 86_400_000;
    }
    await schedule.stop();
    expect(errors).toEqual([]);
    expect(Number(await store.getMeta(VERIFY_SUCCESS_META))).toBe(Date.parse('2026-12-03T03:00:00Z'));
    expect(Number(await store.getMeta(REMOTE_SUCCESS_META))).toBe(Date.parse('2026-12-03T03:00:00Z'));
    const remote = await RemoteBackups.open({ url: 's3://drover-backups/scheduled', endpoint, credentials });
    try {
      // keepDaily 1 remotely as locally: only the newest is left.
      expect((await remote.list()).map((b) => new Date(b.at).toISOString())).toEqual(['2026-12-03T03:00:00.000Z']);
    } finally {
      remote.close();
    }

    // Nothing listens on this port: the upload fails fast, the local backup and its verify stand.
    const closed = new BackupSchedule({ ...base, dir: join(work, 'scheduled-2'), remote: { url: 's3://drover-backups/x', endpoint: 'http://127.0.0.1:1', credentials } });
    await closed.runNow();
    await closed.stop();
    expect(errors.map(([task]) => task)).toEqual(['backup-upload']);
    expect(readdirSync(join(work, 'scheduled-2')).filter((n) => n.startsWith('drover-backup-'))).toHaveLength(1);
  });
});
