/**
 * The audit export's refusal on PostgreSQL: records cut off the store's trail
 * (a DELETE by someone with database access) stop the export, a forged
 * restore marker does not help, and a restore recorded by `drover backup
 * restore` (its `backup.restore` record, named by the marker) lets it start
 * over. The same exporter runs on SQLite (test/ops/audit-chain.test.ts).
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { AuditTrail } from '../../src/ops/audit/audit-trail.js';
import { AuditExporter, exportFiles } from '../../src/ops/audit/export.js';
import { missingFromStore, supersededExports } from '../../src/ops/audit/export-diff.js';
import { loadOrCreateNodeKey } from '../../src/ops/audit/node-key.js';
import { writeRestoreMarker } from '../../src/ops/audit/restore-marker.js';
import type { StorageEngine } from '../../src/store/engine.js';
import { openStore } from '../../src/store/open.js';

const PG_URL = process.env.DROVER_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `drover_ax_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
const dir = mkdtempSync(join(tmpdir(), 'drover-pg-audit-'));
const admin = new pg.Pool({ connectionString: PG_URL, max: 2 });
admin.on('error', () => undefined);
let store: StorageEngine | null = null;

afterAll(async () => {
  await store?.close().catch(() => undefined);
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin.end();
  rmSync(dir, { recursive: true, force: true });
});

describe('PostgreSQL audit export', () => {
  it('refuses a trail cut in the database, and starts over only after a recorded restore', { timeout: 60_000 }, async () => {
    store = await openStore(PG_URL, { postgres: { schema, poolMax: 2 } });
    await store.migrate();
    const trail = new AuditTrail({ store, key: loadOrCreateNodeKey(dir) });
    for (let i = 1; i <= 4; i++) await trail.record({ actor: 'key_a', action: 'job.cancel', target: `job:${i}` });
    const exportDir = join(dir, 'audit');
    const exporter = () => new AuditExporter({ store: store!, dir: exportDir, dataDir: dir, keepFiles: 30, intervalMs: 60_000, onError: (e) => { throw e; } });
    expect(await exporter().flush()).toBe(4);

    await admin.query(`DELETE FROM ${schema}.audit_log WHERE seq >= 3`);
    const refused = exporter();
    expect(await refused.flush()).toBe(0);
    expect(refused.status()).toMatchObject({ state: 'refused', exportedSeq: 4, problem: expect.stringMatching(/no longer holds record 4/) });
    expect((await missingFromStore(store, exportFiles(exportDir))).missing.map((r) => r.seq)).toEqual([3, 4]);

    // A marker naming a record that is not a restore does not count.
    const [second] = await store.readAudit({ after: 1, limit: 1 });
    writeRestoreMarker(dir, { seq: second!.seq, hash: second!.hash, at: '', backup: 'forged' });
    expect(await refused.flush()).toBe(0);

    const restore = await trail.record({ actor: 'cli:ops@db', action: 'backup.restore', target: `store:schema ${schema}` });
    writeRestoreMarker(dir, { seq: restore.seq, hash: restore.hash, at: restore.time, backup: '/backups/b' });
    expect(await refused.flush()).toBe(3);
    expect(refused.status()).toMatchObject({ state: 'ok', superseded: 1, exportedSeq: 3 });
    const [old] = await supersededExports(store, exportDir);
    expect(old!.missing.map((r) => r.seq)).toEqual([3, 4]);
  });
});
