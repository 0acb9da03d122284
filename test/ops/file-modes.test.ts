/**
 * Data at rest is private even under a permissive umask: after a node starts
 * and a backup is taken, the data directory, backup directories and audit
 * export directory are 0700 and the SQLite file, its -wal/-shm, the lock, the
 * signing key, backup files and export files are 0600. `drover doctor` warns
 * (check `file-modes`) when one of them is wider. Needs `npm run build`.
 */
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, killAllChildren, startChildNode } from '../helpers/child-node.js';
import { waitFor } from '../helpers/wait-for.js';
import { drover } from './cli.js';

const CONFIG = fileURLToPath(new URL('./fixtures/audit-export.config.mjs', import.meta.url));
const KEY = 'drv_file_modes_admin_key_0123456789ab';
const root = mkdtempSync(join(tmpdir(), 'drover-modes-'));
const data = join(root, 'data');
const env = { DROVER_DATABASE_URL: join(data, 'drover.db') };
const mode = (path: string) => (statSync(path).mode & 0o777).toString(8);
let umask: number;

beforeAll(() => {
  // The hardest case: a umask that takes nothing away, so only drover's own modes protect the files.
  umask = process.umask(0);
});
afterAll(async () => {
  process.umask(umask);
  await killAllChildren();
  rmSync(root, { recursive: true, force: true });
});

describe('data at rest', () => {
  it('is created 0700/0600 by start, export and backup, and doctor warns when a file is 0644', { timeout: 60_000 }, async () => {
    const node = await startChildNode({ config: CONFIG, env: { ...env, DROVER_BOOTSTRAP_ADMIN_KEY: KEY } });
    expect((await api(node.url, KEY, 'POST', '/v1/keys', { name: 'one', scopes: ['read'] })).status).toBe(201);
    await waitFor(() => readdirSync(join(data, 'audit')).some((n) => n.startsWith('audit-')), { timeoutMs: 10_000, message: 'an export file' });
    const live = Object.fromEntries(['', '/drover.db', '/drover.db-wal', '/drover.db-shm', '/drover.db.lock', '/audit-signing-key.pem', '/audit'].map((p) => [p || '/', mode(data + p)]));
    expect(live).toEqual({ '/': '700', '/drover.db': '600', '/drover.db-wal': '600', '/drover.db-shm': '600', '/drover.db.lock': '600', '/audit-signing-key.pem': '600', '/audit': '700' });
    for (const name of readdirSync(join(data, 'audit'))) expect(mode(join(data, 'audit', name)), name).toBe('600');

    const backup = await drover(['backup', 'create', '--json'], env);
    expect(backup.code, backup.stderr).toBe(0);
    const { path } = JSON.parse(backup.stdout);
    expect([mode(join(data, 'backups')), mode(path)]).toEqual(['700', '700']);
    for (const name of readdirSync(path)) expect(mode(join(path, name)), name).toBe('600');

    process.kill(node.pid, 'SIGTERM');
    expect((await node.exited).code).toBe(0);

    const clean = await drover(['doctor', '--config', CONFIG, '--json'], env);
    const checks = (out: string) => new Map((JSON.parse(out).checks as Array<{ id: string; status: string; detail: string; fix?: string }>).map((c) => [c.id, c]));
    expect(checks(clean.stdout).get('file-modes'), clean.stdout).toMatchObject({ status: 'pass' });

    chmodSync(env.DROVER_DATABASE_URL, 0o644);
    chmodSync(join(data, 'backups'), 0o755);
    const wide = checks((await drover(['doctor', '--config', CONFIG, '--json'], env)).stdout).get('file-modes');
    expect(wide).toMatchObject({ status: 'warn', fix: expect.stringContaining('chmod -R go-rwx') });
    expect(wide!.detail).toContain(`${env.DROVER_DATABASE_URL} (644)`);
    expect(wide!.detail).toContain(`${join(data, 'backups')} (755)`);
  });
});
