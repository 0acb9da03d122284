/**
 * `drover doctor --url` against a running node (a child process over HTTP),
 * as the runbook's health check runs it: healthy (exit 0), degraded by a
 * paused queue (exit 1), unhealthy with a quarantined handler
 * (exit 2), unreachable (exit 3), and no API key (the
 * API checks skipped, not failed). Human output and --json.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, killAllChildren, startChildNode, type ChildNode } from '../helpers/child-node.js';
import { waitFor } from '../helpers/wait-for.js';
import { drover } from './cli.js';

const dir = mkdtempSync(join(tmpdir(), 'drover-doctor-live-'));
const KEY = 'drv_doctor_live_admin_key_0123456789ab';
const CONFIG = join(dir, 'live.config.mjs');
writeFileSync(
  CONFIG,
  `export default {
  handlers: [
    { name: 'greet', on: 'hello.*', run: async () => ({ ok: true }) },
    { name: 'broken', on: 'broken.*', retry: { maxAttempts: 1 }, quarantine: { failures: 2, windowMs: 60000 }, breaker: { failures: 100 },
      run: async () => { throw new Error('always fails'); } },
  ],
};
`,
);

interface Report {
  ok: boolean;
  exitCode: number;
  checks: Array<{ id: string; status: string; detail: string; fix?: string }>;
}

let node: ChildNode;
beforeAll(async () => {
  node = await startChildNode({ config: CONFIG, env: { DROVER_DATABASE_URL: join(dir, 'drover.db'), DROVER_BOOTSTRAP_ADMIN_KEY: KEY } });
});
afterAll(async () => {
  await killAllChildren();
  rmSync(dir, { recursive: true, force: true });
});

const doctor = async (args: string[], env: Record<string, string> = { DROVER_API_KEY: KEY }) => {
  const result = await drover(['doctor', '--url', node.url, '--window', '1', ...args], env);
  return { ...result, report: args.includes('--json') ? (JSON.parse(result.stdout) as Report) : null };
};
const status = (report: Report | null, id: string) => report?.checks.find((c) => c.id === id)?.status;

describe('drover doctor --url', () => {
  it('reports a healthy node and exits 0', async () => {
    expect((await api(node.url, KEY, 'POST', '/v1/events', { name: 'hello.world', data: {} })).status).toBe(202);
    const { code, report, stderr } = await doctor(['--json']);
    expect(code, stderr).toBe(0);
    expect(report).toMatchObject({ ok: true, exitCode: 0 });
    for (const id of ['ready', 'lifecycle', 'quarantine', 'breakers', 'queue:default', 'api-errors', 'job-errors', 'store-errors']) expect(status(report, id), id).toBe('pass');
    expect(status(report, 'backup')).toBe('skip'); // no backup taken yet
    expect(report!.checks.find((c) => c.id === 'queue:default')?.detail).toMatch(/oldest due job \d+ s/);
  });

  it('warns about a paused queue and exits 1; human output names it with the fix', async () => {
    expect((await api(node.url, KEY, 'POST', '/v1/queues/default/pause')).status).toBe(200);
    try {
      const { code, stdout } = await doctor([]);
      expect(code).toBe(1);
      expect(stdout).toMatch(/^WARN {2}queue:default .*paused/m);
      expect(stdout).toContain('drover queues resume default');
    } finally {
      await api(node.url, KEY, 'POST', '/v1/queues/default/resume');
    }
  });

  it('fails a quarantined handler and exits 2, naming the reset command', async () => {
    for (let i = 0; i < 3; i++) expect((await api(node.url, KEY, 'POST', '/v1/events', { name: 'broken.run', data: { i } })).status).toBe(202);
    await waitFor(async () => ((await api(node.url, KEY, 'GET', '/v1/status')).body.quarantinedHandlers as string[]).includes('broken'), { message: 'broken quarantined' });
    const { code, report } = await doctor(['--json']);
    expect(code).toBe(2);
    expect(report!.checks.find((c) => c.id === 'quarantine')).toMatchObject({ status: 'fail', detail: 'quarantined: broken' });
    expect(report!.checks.find((c) => c.id === 'quarantine')?.fix).toContain('drover handlers reset broken');
    expect((await api(node.url, KEY, 'POST', '/v1/handlers/broken/reset')).status).toBe(200);
  });

  it('skips the API checks without a key, and exits 3 when no node answers', async () => {
    const anonymous = await doctor(['--json'], { DROVER_API_KEY: '' });
    expect(status(anonymous.report, 'api')).toBe('skip');
    expect(status(anonymous.report, 'ready')).toBe('pass');
    const gone = await drover(['doctor', '--url', 'http://127.0.0.1:1', '--window', '0', '--json'], { DROVER_API_KEY: KEY });
    expect(gone.code).toBe(3);
    expect((JSON.parse(gone.stdout) as Report).checks[0]).toMatchObject({ id: 'reach', status: 'fail' });
  });

  it('exits 64 (a usage error, not "degraded") for a bad option or option value, checking nothing', async () => {
    for (const args of [['--window', 'abc'], ['--max-oldest-age', '-1'], ['--error-ratio'], ['--no-such-option']]) {
      const bad = await doctor(args);
      expect(bad.code, args.join(' ')).toBe(64);
      expect(bad.stdout, args.join(' ')).toBe('');
      expect(bad.stderr, args.join(' ')).toMatch(/error: (option '.*' argument|unknown option)/);
    }
    expect((await drover(['doctor', '--help'], {})).code).toBe(0);
  });
});
