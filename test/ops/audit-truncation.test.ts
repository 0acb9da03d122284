/**
 * Truncating the audit trail in the store no longer hides behind a restart:
 * records are cut off the store between two runs of a node (as someone with
 * write access to the database would), and on the next start the export
 * refuses to go on; the metric, `GET /v1/status` and an error log line say
 * so, and `drover audit verify` lists the records the store lost. A restore
 * recorded by `drover backup restore` is the one thing that lets the export
 * start over, and verify then reports what the superseded export held.
 * Needs `npm run build` (runs bin/drover).
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { api, killAllChildren, startChildNode, type ChildNode } from '../helpers/child-node.js';
import { waitFor } from '../helpers/wait-for.js';
import { drover } from './cli.js';

const CONFIG = fileURLToPath(new URL('./fixtures/audit-export.config.mjs', import.meta.url));
const KEY = 'drv_audit_truncation_admin_key_0123456';
const dir = mkdtempSync(join(tmpdir(), 'drover-audit-cut-'));
afterEach(killAllChildren);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function stop(node: ChildNode): Promise<void> {
  process.kill(node.pid, 'SIGTERM');
  expect((await node.exited).code).toBe(0);
}

async function exportState(node: ChildNode): Promise<string | undefined> {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  return /^drover_audit_export_state\{state="refused"\} (\d)$/m.exec(text)?.[1];
}

/** Three operator actions (key.create), each one audit record. */
async function actions(node: ChildNode, prefix: string): Promise<void> {
  for (let i = 0; i < 3; i++) expect((await api(node.url, KEY, 'POST', '/v1/keys', { name: `${prefix}-${i}`, scopes: ['read'] })).status).toBe(201);
}

describe('a truncated audit trail', () => {
  it('is refused after a restart, shown in the metric, status and log, and listed by audit verify', { timeout: 60_000 }, async () => {
    const env = { DROVER_DATABASE_URL: join(dir, 'cut', 'drover.db'), DROVER_BOOTSTRAP_ADMIN_KEY: KEY };
    const first = await startChildNode({ config: CONFIG, env });
    await actions(first, 'before');
    await stop(first); // exports what is left at shutdown

    const db = new Database(env.DROVER_DATABASE_URL);
    const cut = db.prepare('DELETE FROM audit_log WHERE seq >= 2').run().changes;
    db.close();
    expect(cut).toBe(2);

    const second = await startChildNode({ config: CONFIG, env });
    await waitFor(async () => (await exportState(second)) === '1', { timeoutMs: 10_000, message: 'drover_audit_export_state{state="refused"} 1' });
    const status = await api(second.url, KEY, 'GET', '/v1/status');
    expect(status.body.auditExport).toMatchObject({ state: 'refused', exportedSeq: 3, problem: expect.stringMatching(/no longer holds record 3.*no restore was recorded/) });
    expect((await fetch(`${second.url}/health/ready`)).status).toBe(200); // status and alert, not readiness
    await actions(second, 'after'); // new records land in the store, not in the stopped export
    await stop(second);
    const errorLine = second.stdout.map((l) => { try { return JSON.parse(l); } catch { return null; } }).find((l) => l?.msg?.startsWith('audit export refused'));
    expect(errorLine).toMatchObject({ level: 'error' });
    expect(readdirSync(join(dir, 'cut', 'audit')).filter((n) => n.startsWith('superseded-'))).toEqual([]);

    // Another restart does not clear it.
    const third = await startChildNode({ config: CONFIG, env });
    await waitFor(async () => (await exportState(third)) === '1', { timeoutMs: 10_000, message: 'still refused after another restart' });
    await stop(third);

    const verify = await drover(['audit', 'verify'], { DROVER_DATABASE_URL: env.DROVER_DATABASE_URL });
    expect(verify.code).not.toBe(0);
    expect(verify.stdout).toMatch(/holds 2 record\(s\) the store no longer does:\n {4}2 {2}\S+ {2}key_\w+ {2}key\.create {2}key:\w+\n {4}3 /);
    expect(verify.stderr).toMatch(/does not match its export/);
  });

  it('starts over after a recorded restore, and audit verify reports what the superseded export held', { timeout: 60_000 }, async () => {
    const env = { DROVER_DATABASE_URL: join(dir, 'restored', 'drover.db'), DROVER_BOOTSTRAP_ADMIN_KEY: KEY };
    const first = await startChildNode({ config: CONFIG, env });
    await actions(first, 'one');
    const backup = await drover(['backup', 'create', '--json'], { DROVER_DATABASE_URL: env.DROVER_DATABASE_URL });
    expect(backup.code, backup.stderr).toBe(0);
    const { path } = JSON.parse(backup.stdout);
    await actions(first, 'two'); // after the backup: lost by the restore
    await stop(first);

    const restored = await drover(['backup', 'restore', path], { DROVER_DATABASE_URL: env.DROVER_DATABASE_URL });
    expect(restored.code, restored.stderr).toBe(0);

    const second = await startChildNode({ config: CONFIG, env });
    await waitFor(async () => (await api(second.url, KEY, 'GET', '/v1/status')).body.auditExport?.superseded === 1, { timeoutMs: 10_000, message: 'the export set aside once' });
    expect(await exportState(second)).toBe('0');
    expect(await (await fetch(`${second.url}/metrics`)).text()).toMatch(/^drover_audit_export_superseded_total 1$/m);
    await stop(second);

    const verify = await drover(['audit', 'verify'], { DROVER_DATABASE_URL: env.DROVER_DATABASE_URL });
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/superseded export \S+superseded-\S+: set aside after the restore of \S+ at \S+ \(record \d+\); it holds 4 of its 7 records that the store no longer does:/);
    // What the restore lost: the backup's own record (written after its snapshot) and the three later actions.
    expect(verify.stdout.match(/^ {4}\d+ .*$/gm)?.map((l) => l.trim().split(/\s+/)[3])).toEqual(['backup.create', 'key.create', 'key.create', 'key.create']);
  });
});
