/**
 * `drover doctor` and `drover smoke` as an operator runs them, through the
 * CLI against a live node (child process): doctor passes a sound setup, warns
 * about the still-active first-start key and a public listener, fails (exit 1)
 * on an unmigrated store and an invalid config, and prints JSON with --json;
 * smoke drives the built-in `drover.smoke` handler to success.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DROVER_BIN, api, killAllChildren, startChildNode, type ChildNode } from '../helpers/child-node.js';

const run = promisify(execFile);
const CONFIG = fileURLToPath(new URL('../fixtures/hello.config.ts', import.meta.url));
const INVALID = fileURLToPath(new URL('../fixtures/invalid.config.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'drover-doctor-'));
const BOOTSTRAP = 'drv_doctor_bootstrap_key_0123456789';

interface Check {
  id: string;
  status: 'pass' | 'warn' | 'fail' | 'skip';
  detail: string;
  fix?: string;
}

async function drover(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [DROVER_BIN, ...args], { env: { ...process.env, ...env }, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

let node: ChildNode;
const db = join(dir, 'live.db');
beforeAll(async () => {
  node = await startChildNode({ config: CONFIG, env: { DROVER_DATABASE_URL: db, DROVER_BOOTSTRAP_ADMIN_KEY: BOOTSTRAP } });
});
afterAll(async () => {
  await killAllChildren();
  rmSync(dir, { recursive: true, force: true });
});

describe('drover doctor', () => {
  it('passes a running node, warning about the first-start key; then passes once it is rotated', { timeout: 60_000 }, async () => {
    const env = { DROVER_DATABASE_URL: db, DROVER_URL: node.url };
    const first = await drover(['doctor', '--config', CONFIG, '--json'], env);
    expect(first.code, first.stderr).toBe(0);
    const report = JSON.parse(first.stdout) as { ok: boolean; checks: Check[] };
    const by = new Map(report.checks.map((c) => [c.id, c]));
    expect(report.ok).toBe(true);
    for (const id of ['config', 'store', 'migrations', 'listen', 'metrics', 'data-dir', 'clock']) expect(by.get(id)?.status, id).toBe('pass');
    expect(by.get('auth')).toMatchObject({ status: 'warn' });
    expect(by.get('auth')?.fix).toMatch(/drover keys revoke key_/);
    expect(by.get('backup')).toMatchObject({ status: 'skip' });

    // Rotate as the fix says: a named admin key, then revoke the first-start one.
    const created = await drover(['keys', 'create', '--name', 'ops', '--scopes', 'admin', '--json'], env);
    expect(created.code, created.stderr).toBe(0);
    const bootstrapId = /drover keys revoke (key_\S+?)`?$/.exec(by.get('auth')!.fix!)![1]!;
    expect((await drover(['keys', 'revoke', bootstrapId], env)).code).toBe(0);
    const second = await drover(['doctor', '--config', CONFIG], env);
    expect(second.code, second.stdout).toBe(0);
    expect(second.stdout).toMatch(/^PASS\s+auth/m);
    expect(second.stdout).toMatch(/0 failed, 0 warnings/);
  });

  it('warns about a public listener and an unreachable node, and fails on an unmigrated store (exit 1)', { timeout: 60_000 }, async () => {
    // An empty file is an SQLite database with no tables: a store nobody migrated.
    const fresh = join(dir, 'fresh.db');
    writeFileSync(fresh, '');
    const result = await drover(['doctor', '--config', CONFIG, '--json'], { DROVER_DATABASE_URL: fresh, DROVER_HOST: '0.0.0.0', DROVER_URL: 'http://127.0.0.1:9' });
    expect(result.code).toBe(1);
    const checks = new Map((JSON.parse(result.stdout) as { checks: Check[] }).checks.map((c) => [c.id, c]));
    expect(checks.get('migrations')).toMatchObject({ status: 'fail' });
    expect(checks.get('migrations')?.fix).toMatch(/drover migrate/);
    expect(checks.get('listen')).toMatchObject({ status: 'warn' });
    expect(checks.get('metrics')).toMatchObject({ status: 'warn' });
  });

  it('fails on a SQLite path with no store, and does not create one there', { timeout: 60_000 }, async () => {
    const missing = join(dir, 'nowhere', 'drover.db');
    const result = await drover(['doctor', '--config', CONFIG, '--json'], { DROVER_DATABASE_URL: missing, DROVER_URL: 'http://127.0.0.1:9' });
    expect(result.code).toBe(1);
    const checks = new Map((JSON.parse(result.stdout) as { checks: Check[] }).checks.map((c) => [c.id, c]));
    expect(checks.get('store')).toMatchObject({ status: 'fail', detail: `no SQLite store at ${missing}` });
    expect(checks.get('store')?.fix).toMatch(/DROVER_DATABASE_URL/);
    expect(existsSync(missing)).toBe(false);
  });

  it('fails on an invalid config with the key named', { timeout: 60_000 }, async () => {
    const result = await drover(['doctor', '--config', INVALID], { DROVER_DATABASE_URL: join(dir, 'x.db') });
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^FAIL\s+config\s+\S/m);
    expect(result.stdout).toMatch(/fix: /);
  });
});

describe('drover smoke', () => {
  it('runs the built-in probe handler to success on a live node', { timeout: 60_000 }, async () => {
    const result = await drover(['smoke', '--timeout', '20'], { DROVER_URL: node.url, DROVER_API_KEY: await adminKey() });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^smoke ok: job \S+ succeeded in \d+ ms$/m);
  });

  it('exits non-zero with a clear message when the probe cannot run (default queue paused)', { timeout: 60_000 }, async () => {
    const key = await adminKey();
    expect((await api(node.url, key, 'POST', '/v1/queues/default/pause')).status).toBe(200);
    try {
      const result = await drover(['smoke', '--timeout', '1'], { DROVER_URL: node.url, DROVER_API_KEY: key });
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/still queued after 1 s/);
    } finally {
      await api(node.url, key, 'POST', '/v1/queues/default/resume');
    }
  });
});

let admin: string | null = null;
/** A fresh admin key (the first test may have revoked the first-start one). */
async function adminKey(): Promise<string> {
  if (admin) return admin;
  const created = await drover(['keys', 'create', '--name', 'smoke', '--scopes', 'admin'], { DROVER_DATABASE_URL: db });
  admin = /(drv_\S+)/.exec(created.stdout)?.[1] ?? null;
  if (!admin) throw new Error(`no key in: ${created.stdout} ${created.stderr}`);
  return admin;
}
