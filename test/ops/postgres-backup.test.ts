/**
 * The PostgreSQL half of backups against the real server: a pg_dump archive
 * of a live schema, verified by restoring it into a scratch database; a
 * flipped byte fails verify; restore refuses while a drover process is
 * connected, keeps the old schema aside, requeues running jobs and records
 * itself. Each test run uses its own schema (dropped after).
 *
 * PostgreSQL is expected at DROVER_TEST_PG_URL, as in test/store/postgres.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { AuditTrail } from '../../src/ops/audit/audit-trail.js';
import { ephemeralNodeKey, installationKeys, loadOrCreateNodeKey, trustedKeys } from '../../src/ops/audit/node-key.js';
import { MANIFEST_FILE } from '../../src/ops/backup/manifest.js';
import { signManifest } from '../../src/ops/backup/manifest-signature.js';
import { verifyStoredTrail } from '../../src/ops/audit/verify.js';
import { takeBackup } from '../../src/ops/backup/create.js';
import { restoreBackup } from '../../src/ops/backup/restore.js';
import { verifyBackup } from '../../src/ops/backup/verify.js';
import type { StorageEngine } from '../../src/store/engine.js';
import { openStore } from '../../src/store/open.js';

const PG_URL = process.env.DROVER_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `drover_bk_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
const dir = mkdtempSync(join(tmpdir(), 'drover-pg-backup-'));
const admin = new pg.Pool({ connectionString: PG_URL, max: 2 });
admin.on('error', () => undefined);
const open: StorageEngine[] = [];

afterAll(async () => {
  await Promise.all(open.map((s) => s.close().catch(() => undefined)));
  const { rows } = await admin.query<{ name: string }>('SELECT nspname AS name FROM pg_namespace WHERE nspname LIKE $1', [`${schema}%`]);
  for (const { name } of rows) await admin.query(`DROP SCHEMA ${name} CASCADE`);
  await admin.end();
  rmSync(dir, { recursive: true, force: true });
});

const job = (payload: unknown) => ({ handler: 'h', queue: 'default', payload, priority: 0, runAt: Date.now(), maxAttempts: 3 });

describe('PostgreSQL backups', () => {
  it('dump a live schema, verify it in a scratch database, refuse restoring under a connected node, then restore', { timeout: 120_000 }, async () => {
    const store = await openStore(PG_URL, { postgres: { schema, poolMax: 4 } });
    open.push(store);
    await store.migrate();
    await store.enqueue(Array.from({ length: 200 }, (_, i) => job({ i })));
    const leased = await store.lease({ workerId: 'node-gone', handlers: [{ name: 'h', max: 10 }], limit: 3, leaseMs: 3_600_000 });
    expect(leased).toHaveLength(3);
    for (const job of leased) await store.start(job.id, job.leaseToken); // their handlers were running
    const trail = new AuditTrail({ store, key: loadOrCreateNodeKey(dir) });
    await trail.record({ actor: 'key_1', action: 'job.cancel', target: 'job:1' });

    const writes = Array.from({ length: 10 }, (_, i) => store.enqueue([job({ during: i })]));
    const { path, manifest } = await takeBackup({ store, outDir: join(dir, 'backups'), source: PG_URL, auditKeys: installationKeys(dir), signingKey: trail.key, audit: { trail, actor: 'test' } });
    await Promise.all(writes);
    expect(manifest).toMatchObject({ engine: 'postgres', postgres: { schema }, files: [{ name: 'drover.dump' }] });
    expect(manifest.counts.jobs).toBeGreaterThanOrEqual(200);
    expect(manifest.counts.audit_log).toBe(1);

    const verified = await verifyBackup(path, { databaseUrl: PG_URL, trustedKeys: trustedKeys(dir) });
    expect(verified.checks.filter((c) => !c.ok)).toEqual([]);
    expect(verified.checks.map((c) => c.name)).toEqual(['manifest', 'signature', 'sha256 drover.dump', 'archive', 'integrity', 'schema version', 'row counts', 'audit trail']);
    // The scratch database is gone.
    expect((await admin.query("SELECT 1 FROM pg_database WHERE datname LIKE 'drover_verify_%'")).rowCount).toBe(0);

    const corrupt = join(dir, 'corrupt');
    cpSync(path, corrupt, { recursive: true });
    const bytes = readFileSync(join(corrupt, 'drover.dump'));
    bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
    writeFileSync(join(corrupt, 'drover.dump'), bytes);
    expect((await verifyBackup(corrupt, { databaseUrl: PG_URL, trustedKeys: trustedKeys(dir) })).checks.find((c) => !c.ok)?.name).toBe('sha256 drover.dump');

    // A forged backup: the archive and the manifest re-signed by an attacker's key that it also lists as an audit key.
    const forged = join(dir, 'forged');
    cpSync(path, forged, { recursive: true });
    const attacker = ephemeralNodeKey();
    const m = JSON.parse(readFileSync(join(forged, MANIFEST_FILE), 'utf8'));
    delete m.signature;
    m.auditKeys = [{ keyId: attacker.keyId, publicKey: attacker.publicPem }];
    writeFileSync(join(forged, MANIFEST_FILE), JSON.stringify(signManifest(m, attacker)));
    const judged = await verifyBackup(forged, { databaseUrl: PG_URL, trustedKeys: trustedKeys(dir) });
    expect(judged.ok).toBe(false);
    expect(judged.checks.find((c) => c.name === 'signature')).toMatchObject({ ok: false, detail: expect.stringContaining(`signed by ${attacker.keyId}, a key this node does not trust`) });
    expect(judged.newKeys).toEqual([expect.objectContaining({ keyId: attacker.keyId, signer: true, named: false })]);
    const forgedRestore = { path: forged, databaseUrl: PG_URL, dataDir: join(dir, 'forged-data'), actor: 'ops@test', pgSchema: schema };
    await expect(restoreBackup(forgedRestore)).rejects.toThrow(new RegExp(`did not verify, nothing was changed:[^]*pass --trust-new-key ${attacker.keyId}`));
    expect(existsSync(join(dir, 'forged-data', 'audit-trusted-keys'))).toBe(false);

    await store.enqueue([job('after the backup')]);
    // A fresh data directory trusts no key yet: the source node's key is named by its fingerprint.
    const options = { path, databaseUrl: PG_URL, dataDir: join(dir, 'restored-data'), actor: 'ops@test', pgSchema: schema, trustNewKeys: [trail.key.keyId] };
    await expect(restoreBackup(options)).rejects.toThrow(/drover connection\(s\) use schema .* Stop every node on this store/);

    await store.close();
    const result = await restoreBackup(options);
    expect(result.requeued).toBe(3);
    expect(result.trustedKeyFiles.map((k) => k.keyId)).toEqual([trail.key.keyId]);
    expect(result.aside).toEqual([expect.stringMatching(new RegExp(`^schema ${schema}_before_restore_\\d{14}$`))]);
    const aside = result.aside[0]!.slice('schema '.length);
    const before = await admin.query<{ n: string }>(`SELECT count(*) AS n FROM ${aside}.jobs`);
    expect(Number(before.rows[0]!.n)).toBe(211); // kept whole: 200 + 10 written during the backup + 1 after it

    const restored = await openStore(PG_URL, { postgres: { schema, poolMax: 2 } });
    open.push(restored);
    expect((await restored.listJobs({ limit: 1000 })).length).toBe(manifest.counts.jobs);
    for (const held of leased) {
      expect(await restored.getJob(held.id)).toMatchObject({ state: 'queued', leaseToken: null });
      expect((await restored.getAttempts(held.id)).at(-1)?.outcome).toBe('crashed');
    }
    const [record] = await restored.listAudit({ limit: 1 });
    expect(record).toMatchObject({ action: 'backup.restore', actor: 'ops@test', after: { requeuedJobs: 3 } });
    expect((await verifyStoredTrail(restored, trustedKeys(join(dir, 'restored-data')))).ok).toBe(true);
  });
});
