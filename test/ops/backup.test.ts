/**
 * Backups in-process: a consistent copy of a live store (both copy paths),
 * verification that names what is wrong, restore that refuses a running node,
 * keeps the old files, requeues running jobs and records itself; retention;
 * the in-process schedule.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadMigrations } from '../../src/store/sqlite/migrator.js';
import { installationKeys, loadOrCreateNodeKey, trustedKeys } from '../../src/ops/audit/node-key.js';
import { verifyStoredTrail } from '../../src/ops/audit/verify.js';
import { lastBackupSuccess, takeBackup } from '../../src/ops/backup/create.js';
import { backupName, MANIFEST_FILE } from '../../src/ops/backup/manifest.js';
import { restoreBackup } from '../../src/ops/backup/restore.js';
import { isoWeek, planRetention, pruneBackups, type BackupEntry } from '../../src/ops/backup/retention.js';
import { BackupSchedule } from '../../src/ops/backup/schedule.js';
import { verifyBackup } from '../../src/ops/backup/verify.js';
import { openSqliteEngine } from '../../src/store/sqlite/sqlite-engine.js';
import { startTestNode, type TestNode } from '../helpers/node.js';

const dirs: string[] = [];
const nodes: TestNode[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'drover-backup-'));
  dirs.push(dir);
  return dir;
}
async function node(extra: Record<string, unknown> = {}): Promise<TestNode> {
  const n = await startTestNode({ handlers: [{ name: 'later', run: async () => undefined }], rateLimit: { enabled: false }, ...extra }, { dir: tempDir() });
  nodes.push(n);
  return n;
}

afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.close()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const delayed = (n: number) => ({ jobs: Array.from({ length: n }, (_, i) => ({ handler: 'later', payload: { i }, delayMs: 3_600_000 })) });

describe('backup create', () => {
  it('copies a live store while writes continue (online backup API in the owning process)', async () => {
    const n = await node();
    await n.request('POST', '/v1/jobs', delayed(500));
    const out = join(tempDir(), 'backups');
    // Writes race the copy: the copy is one consistent snapshot whatever they do.
    const writes = Array.from({ length: 20 }, () => n.request('POST', '/v1/jobs', delayed(50)));
    const result = await takeBackup({ store: n.store, outDir: out, source: join(n.dir, 'drover.db'), auditKeys: installationKeys(n.dir), signingKey: n.runtime.audit.key, audit: { trail: n.runtime.audit, actor: 'test' } });
    await Promise.all(writes);

    expect(result.path).toMatch(/drover-backup-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$/);
    expect(readdirSync(result.path).sort()).toEqual(['drover.db', MANIFEST_FILE]);
    expect(readdirSync(out)).toEqual([result.path.split('/').pop()]); // no partial directory left
    const m = result.manifest;
    expect(m).toMatchObject({ format: 'drover-backup/1', engine: 'sqlite', schemaVersion: loadMigrations().length, droverVersion: expect.any(String), files: [{ name: 'drover.db', bytes: result.bytes, sha256: sha(join(result.path, 'drover.db')) }] });
    expect(m.counts.jobs).toBeGreaterThanOrEqual(500);
    expect(m.counts.jobs).toBeLessThanOrEqual(1500);
    expect(m.auditKeys.map((k) => k.keyId)).toEqual([n.runtime.audit.key.keyId]);

    const verified = await verifyBackup(result.path, { trustedKeys: trustedKeys(n.dir) });
    expect(verified.checks.filter((c) => !c.ok)).toEqual([]);
    expect(verified.ok).toBe(true);
    expect(await lastBackupSuccess(n.store)).toBe(Date.parse(m.createdAt));
    const [last] = await n.store.listAudit({ limit: 1 });
    expect(last).toMatchObject({ action: 'backup.create', actor: 'test', after: { path: result.path, bytes: result.bytes } });
  });

  it('copies beside a running node from another connection (VACUUM INTO), as `drover backup create` does', async () => {
    const n = await node();
    await n.request('POST', '/v1/jobs', delayed(200));
    const tool = await openSqliteEngine({ path: join(n.dir, 'drover.db'), lock: false });
    try {
      const writes = Array.from({ length: 10 }, () => n.request('POST', '/v1/jobs', delayed(20)));
      const result = await takeBackup({ store: tool, outDir: join(tempDir(), 'b'), source: 'x', auditKeys: installationKeys(n.dir), signingKey: n.runtime.audit.key });
      await Promise.all(writes);
      expect((await verifyBackup(result.path, { trustedKeys: trustedKeys(n.dir) })).ok).toBe(true);
      expect(result.manifest.counts.jobs).toBeGreaterThanOrEqual(200);
    } finally {
      await tool.close();
    }
  });
});

describe('backup verify', () => {
  let path: string;
  let n: TestNode;
  beforeEach(async () => {
    n = await node();
    await n.request('POST', '/v1/jobs', delayed(100));
    path = (await takeBackup({ store: n.store, outDir: join(tempDir(), 'b'), source: 'x', auditKeys: installationKeys(n.dir), signingKey: n.runtime.audit.key })).path;
  });

  const failed = async (p: string) => (await verifyBackup(p, { trustedKeys: trustedKeys(n.dir) })).checks.filter((c) => !c.ok).map((c) => c.name);

  it('fails on one flipped byte, naming the file, without opening it', async () => {
    const file = join(path, 'drover.db');
    const bytes = readFileSync(file);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
    writeFileSync(file, bytes);
    const result = await verifyBackup(path);
    expect(result.ok).toBe(false);
    expect(result.checks.find((c) => c.name === 'sha256 drover.db')).toMatchObject({ ok: false, detail: expect.stringMatching(/changed or damaged/) });
    expect(readdirSync(path).sort()).toEqual(['drover.db', MANIFEST_FILE]);
  });

  it('fails when the counts do not match the manifest, naming the table', async () => {
    const manifest = JSON.parse(readFileSync(join(path, MANIFEST_FILE), 'utf8'));
    manifest.counts.jobs += 1;
    writeFileSync(join(path, MANIFEST_FILE), JSON.stringify(manifest));
    const result = await verifyBackup(path);
    expect(result.checks.find((c) => c.name === 'row counts')).toMatchObject({ ok: false, detail: `jobs: manifest ${manifest.counts.jobs}, copy ${manifest.counts.jobs - 1}` });
  });

  it('fails on a schema this drover does not know, and on a missing or foreign manifest', async () => {
    const file = join(path, 'drover.db');
    const db = new Database(file);
    db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, ?, 0)').run('future');
    db.close();
    const manifest = JSON.parse(readFileSync(join(path, MANIFEST_FILE), 'utf8'));
    manifest.schemaVersion = 99;
    manifest.files[0].sha256 = sha(file);
    manifest.files[0].bytes = readFileSync(file).length;
    writeFileSync(join(path, MANIFEST_FILE), JSON.stringify(manifest));
    const result = await verifyBackup(path);
    expect(result.checks.find((c) => c.name === 'schema version')).toMatchObject({ ok: false, detail: expect.stringMatching(/newer than this drover knows/) });

    rmSync(join(path, MANIFEST_FILE));
    expect(await failed(path)).toEqual(['manifest']);
    writeFileSync(join(path, MANIFEST_FILE), '{"format":"other"}');
    expect((await verifyBackup(path)).checks[0]!.detail).toMatch(/not a Drover backup manifest/);
  });

  it('fails when an audit record in the copy was tampered with', async () => {
    await n.runtime.audit.record({ actor: 'k', action: 'job.cancel', target: 'job:1' });
    const p2 = (await takeBackup({ store: n.store, outDir: join(tempDir(), 'c'), source: 'x', auditKeys: installationKeys(n.dir), signingKey: n.runtime.audit.key })).path;
    const file = join(p2, 'drover.db');
    const db = new Database(file);
    db.prepare("UPDATE audit_log SET target = 'job:2' WHERE seq = 1").run();
    db.close();
    const manifest = JSON.parse(readFileSync(join(p2, MANIFEST_FILE), 'utf8'));
    manifest.files[0].sha256 = sha(file);
    writeFileSync(join(p2, MANIFEST_FILE), JSON.stringify(manifest));
    expect((await verifyBackup(p2)).checks.find((c) => c.name === 'audit trail')).toMatchObject({ ok: false, detail: expect.stringMatching(/^record 1: .*edited/) });
  });
});

describe('backup restore', () => {
  it('refuses while a node runs on the target, saying how to stop it, and changes nothing', async () => {
    const source = await node();
    const { path } = await takeBackup({ store: source.store, outDir: join(tempDir(), 'b'), source: 'x', auditKeys: [], signingKey: source.runtime.audit.key });
    const target = await node();
    const before = readdirSync(target.dir).sort();
    const restoring = restoreBackup({ path, databaseUrl: join(target.dir, 'drover.db'), dataDir: target.dir, actor: 'test', trustNewKeys: [source.runtime.audit.key.keyId] });
    await expect(restoring).rejects.toThrow(new RegExp(`in use by drover pid ${process.pid}\\. Stop that node first .*kill -TERM ${process.pid}`));
    expect(readdirSync(target.dir).sort()).toEqual(before);
  });

  it('refuses a backup that does not verify', async () => {
    const source = await node();
    const { path } = await takeBackup({ store: source.store, outDir: join(tempDir(), 'b'), source: 'x', auditKeys: [], signingKey: source.runtime.audit.key });
    writeFileSync(join(path, 'drover.db'), 'not a database');
    const target = join(tempDir(), 'drover.db');
    await expect(restoreBackup({ path, databaseUrl: target, dataDir: tempDir(), actor: 'test', trustNewKeys: [source.runtime.audit.key.keyId] })).rejects.toThrow(/did not verify, nothing was changed:\n {2}sha256 drover.db/);
    expect(existsSync(target)).toBe(false);
  });

  it('keeps the previous store aside, requeues jobs that were running under another worker, and records the restore', async () => {
    const dir = tempDir();
    const store = await openSqliteEngine({ path: join(dir, 'drover.db') });
    await store.migrate();
    await store.enqueue(Array.from({ length: 3 }, (_, i) => ({ handler: 'h', queue: 'default', payload: { i }, priority: 0, runAt: Date.now(), maxAttempts: 3 })));
    const leased = await store.lease({ workerId: 'node-that-is-gone', handlers: [{ name: 'h', max: 10 }], limit: 2, leaseMs: 3_600_000 });
    expect(leased).toHaveLength(2);
    for (const job of leased) await store.start(job.id, job.leaseToken); // their handlers were running
    const { path } = await takeBackup({ store, outDir: join(dir, 'backups'), source: 'x', auditKeys: [], signingKey: loadOrCreateNodeKey(dir) });
    await store.enqueue([{ handler: 'h', queue: 'default', payload: 'after the backup', priority: 0, runAt: Date.now(), maxAttempts: 3 }]);
    await store.close();
    // The target has a -wal beside it (a store closed uncleanly): it moves aside with its database.
    writeFileSync(join(dir, 'drover.db-wal'), '');

    const result = await restoreBackup({ path, databaseUrl: join(dir, 'drover.db'), dataDir: dir, actor: 'ops@test' });
    expect(result.requeued).toBe(2);
    expect(result.aside).toHaveLength(2);
    expect(result.aside[0]).toMatch(/drover\.db\.before-restore-\d{4}-\d{2}-\d{2}T[\d-]+Z$/);
    expect(result.aside[1]).toBe(`${result.aside[0]}-wal`);
    expect(existsSync(`${join(dir, 'drover.db')}.lock`)).toBe(false);

    const old = new Database(result.aside[0]!, { readonly: true });
    expect(old.prepare('SELECT count(*) FROM jobs').pluck().get()).toBe(4);
    old.close();

    const restored = await openSqliteEngine({ path: join(dir, 'drover.db') });
    try {
      const jobs = await restored.listJobs({ limit: 10 });
      expect(jobs).toHaveLength(3);
      expect(jobs.map((j) => j.state).sort()).toEqual(['queued', 'queued', 'queued']);
      for (const job of leased) {
        expect((await restored.getAttempts(job.id)).at(-1)).toMatchObject({ workerId: 'node-that-is-gone', outcome: 'crashed' });
        expect(await restored.complete(job.id, job.leaseToken, null)).toEqual({ ok: false, reason: 'stale_lease' });
      }
      const [record] = await restored.listAudit({ limit: 1 });
      expect(record).toMatchObject({ action: 'backup.restore', actor: 'ops@test', before: { aside: result.aside }, after: { backup: path, requeuedJobs: 2 } });
      expect((await verifyStoredTrail(restored, trustedKeys(dir))).ok).toBe(true);
    } finally {
      await restored.close();
    }
  });
});

describe('retention', () => {
  const at = (iso: string): BackupEntry => ({ name: backupName(Date.parse(iso)), path: `/b/${iso}`, at: Date.parse(iso) });

  it('keeps the newest of each recent day, ISO week and month, and always the newest', () => {
    const entries = [
      at('2026-11-23T12:00:00Z'), // Monday, W48
      at('2026-11-23T02:00:00Z'),
      at('2026-11-22T12:00:00Z'), // Sunday, W47
      at('2026-11-21T12:00:00Z'),
      at('2026-11-10T12:00:00Z'), // W46
      at('2026-10-31T12:00:00Z'),
      at('2026-10-01T12:00:00Z'),
      at('2026-09-15T12:00:00Z'),
    ];
    const plan = planRetention(entries, { keepDaily: 2, keepWeekly: 2, keepMonthly: 2 });
    const reasons = Object.fromEntries(plan.keep.map((k) => [k.path.slice(3), k.reasons]));
    expect(reasons).toEqual({
      '2026-11-23T12:00:00Z': ['newest', 'daily 2026-11-23', 'weekly 2026-W48', 'monthly 2026-11'],
      '2026-11-22T12:00:00Z': ['daily 2026-11-22', 'weekly 2026-W47'],
      '2026-10-31T12:00:00Z': ['monthly 2026-10'],
    });
    expect(plan.remove.map((r) => r.path.slice(3))).toEqual(['2026-11-23T02:00:00Z', '2026-11-21T12:00:00Z', '2026-11-10T12:00:00Z', '2026-10-01T12:00:00Z', '2026-09-15T12:00:00Z']);
    expect(planRetention(entries, { keepDaily: 0, keepWeekly: 0, keepMonthly: 0 }).keep.map((k) => k.reasons)).toEqual([['newest']]);
    expect(isoWeek(Date.parse('2021-01-03T00:00:00Z'))).toBe('2020-W53');
  });

  it('prune is a dry run unless told to delete, and leaves what is not a complete backup alone', () => {
    const dir = tempDir();
    const days = ['2026-11-20', '2026-11-21', '2026-11-22', '2026-11-23'];
    for (const day of days) {
      const p = join(dir, backupName(Date.parse(`${day}T10:00:00Z`)));
      mkdirSync(p);
      writeFileSync(join(p, MANIFEST_FILE), '{}');
    }
    mkdirSync(join(dir, `.${backupName(Date.parse('2026-11-01T00:00:00Z'))}.partial`));
    mkdirSync(join(dir, backupName(Date.parse('2026-11-02T00:00:00Z')))); // no manifest: incomplete
    writeFileSync(join(dir, 'notes.txt'), 'mine');
    const policy = { keepDaily: 2, keepWeekly: 0, keepMonthly: 0 };

    const dry = pruneBackups(dir, policy, { dryRun: true });
    expect(dry.remove.map((e) => e.name)).toEqual([backupName(Date.parse('2026-11-21T10:00:00Z')), backupName(Date.parse('2026-11-20T10:00:00Z'))]);
    expect(dry.ignored).toHaveLength(3);
    expect(readdirSync(dir)).toHaveLength(7);

    pruneBackups(dir, policy, { dryRun: false });
    expect(readdirSync(dir).sort()).toEqual(
      [...dry.keep.map((k) => k.name), ...dry.ignored].sort(),
    );
  });
});

describe('drover_backup_last_success_timestamp_seconds', () => {
  it('is 0 until a backup, then the time of the last one, whoever took it', async () => {
    const n = await node();
    const scrape = async () => {
      const res = await n.app.inject({ method: 'GET', url: '/metrics' });
      return /^drover_backup_last_success_timestamp_seconds (\S+)$/m.exec(res.body)?.[1];
    };
    expect(await scrape()).toBe('0');
    const tool = await openSqliteEngine({ path: join(n.dir, 'drover.db'), lock: false });
    try {
      const { manifest } = await takeBackup({ store: tool, outDir: join(tempDir(), 'b'), source: 'x', auditKeys: [], signingKey: n.runtime.audit.key });
      expect(Number(await scrape())).toBe(Date.parse(manifest.createdAt) / 1000);
    } finally {
      await tool.close();
    }
  });
});

describe('in-process schedule', () => {
  it('takes a backup, applies retention, reports success; `backup.every` is accepted by the config', async () => {
    const n = await node({ backup: { every: '24h', keepDaily: 1, keepWeekly: 0, keepMonthly: 0 } });
    expect(n.runtime.config.backup).toMatchObject({ everyMs: 86_400_000, dir: 'backups', keepDaily: 1 });
    const dir = join(tempDir(), 'scheduled');
    const successes: string[] = [];
    const errors: Error[] = [];
    let now = Date.parse('2026-11-20T03:00:00Z');
    const schedule = new BackupSchedule({
      store: n.store,
      everyMs: 86_400_000,
      dir,
      retention: { keepDaily: 2, keepWeekly: 0, keepMonthly: 0 },
      source: 'x',
      nodeId: n.runtime.workerId,
      auditKeys: () => installationKeys(n.dir),
      audit: n.runtime.audit,
      clock: () => now,
      onSuccess: (r) => successes.push(r.path),
      onError: (e) => errors.push(e),
    });
    for (let day = 0; day < 3; day++) {
      await schedule.runNow();
      now += 86_400_000;
    }
    await schedule.stop();
    expect(errors).toEqual([]);
    expect(successes).toHaveLength(3);
    expect(readdirSync(dir).sort()).toEqual(successes.slice(1).map((p) => p.split('/').pop()).sort());
    expect(schedule.lastSuccessAt).toBe(Date.parse('2026-11-22T03:00:00Z'));
    expect(await lastBackupSuccess(n.store)).toBe(Date.parse('2026-11-22T03:00:00Z'));
    const [record] = await n.store.listAudit({ limit: 1 });
    expect(record).toMatchObject({ action: 'backup.create', actor: `node:${n.runtime.workerId}` });
  });

  it('counts a failed backup and reports it', async () => {
    const n = await node();
    const blocked = join(tempDir(), 'file');
    writeFileSync(blocked, 'a file where the backup directory should be');
    const errors: Error[] = [];
    const schedule = new BackupSchedule({
      store: n.store, everyMs: 60_000, dir: join(blocked, 'sub'), retention: { keepDaily: 1, keepWeekly: 0, keepMonthly: 0 },
      source: 'x', nodeId: 'n', auditKeys: () => [], audit: n.runtime.audit, onSuccess: () => undefined, onError: (e) => errors.push(e),
    });
    await schedule.runNow();
    await schedule.stop();
    expect(schedule.failures).toBe(1);
    expect(errors[0]?.message).toMatch(/ENOTDIR|not a directory/);
    expect(schedule.lastSuccessAt).toBeNull();
  });
});

