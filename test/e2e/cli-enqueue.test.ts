/**
 * `drover jobs enqueue` as a user types it: the payload inline, from a file
 * and from standard input, and every job option POST /v1/jobs takes.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, DROVER_BIN, killAllChildren, startChildNode, type ChildNode } from '../helpers/child-node.js';
import { waitFor } from '../helpers/wait-for.js';

const CONFIG = fileURLToPath(new URL('../fixtures/hello.config.ts', import.meta.url));
const KEY = 'drv_cli_enqueue_admin_key_000000001';
const dir = mkdtempSync(join(tmpdir(), 'drover-enqueue-'));
let node: ChildNode;
beforeAll(async () => {
  node = await startChildNode({ config: CONFIG, env: { DROVER_DATABASE_URL: join(dir, 'drover.db'), DROVER_BOOTSTRAP_ADMIN_KEY: KEY } });
}, 30_000);
afterAll(async () => {
  await killAllChildren();
  rmSync(dir, { recursive: true, force: true });
});

function drover(args: string[], stdin?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [DROVER_BIN, ...args], { env: { ...process.env, DROVER_URL: node.url, DROVER_API_KEY: KEY }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdin.end(stdin ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  return new Promise((resolve) => child.on('exit', (code) => {
    clearTimeout(timer);
    resolve({ code, stdout, stderr });
  }));
}
const enqueue = async (args: string[], stdin?: string) => {
  const result = await drover(['jobs', 'enqueue', 'greet', ...args], stdin);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as Record<string, any>;
};

describe('drover jobs enqueue', () => {
  it('takes the payload inline, from a file and from standard input; the job runs', { timeout: 60_000 }, async () => {
    const file = join(dir, 'payload.json');
    writeFileSync(file, JSON.stringify({ who: 'file' }));
    const jobs = [await enqueue(['--payload', '{"who":"inline"}']), await enqueue(['--payload-file', file]), await enqueue(['--payload-file', '-'], '{"who":"stdin"}\n')];
    expect(jobs.map((j) => j.payload)).toEqual([{ who: 'inline' }, { who: 'file' }, { who: 'stdin' }]);
    const last = await waitFor(async () => {
      const { body } = await api(node.url, KEY, 'GET', `/v1/jobs/${jobs[2]!.id}`);
      return body.state === 'succeeded' ? body : null;
    });
    expect(last.result).toEqual({ greeted: 'stdin' });
  });

  it('passes queue, priority, delay, idempotency key, max attempts and concurrency key', { timeout: 30_000 }, async () => {
    const job = await enqueue(['--payload', '{}', '--queue', 'default', '--priority', '-5', '--delay', '600000', '--idempotency-key', 'order-1', '--max-attempts', '2', '--concurrency-key', 'tenant-a']);
    expect(job).toMatchObject({ queue: 'default', priority: -5, state: 'scheduled', idempotencyKey: 'order-1', maxAttempts: 2, concurrencyKey: 'tenant-a', created: true });
    expect(Date.parse(job.runAt) - Date.now()).toBeGreaterThan(500_000);
    const again = await enqueue(['--idempotency-key', 'order-1']);
    expect(again).toMatchObject({ id: job.id, created: false });
    const at = await enqueue(['--run-at', '2030-01-01T00:00:00Z']);
    expect(at).toMatchObject({ state: 'scheduled', runAt: '2030-01-01T00:00:00.000Z' });
  });

  it('says what is wrong with a bad payload or option, and enqueues nothing', { timeout: 30_000 }, async () => {
    const before = (await api(node.url, KEY, 'GET', '/v1/jobs?limit=100')).body;
    const bad = await drover(['jobs', 'enqueue', 'greet', '--payload-file', '-'], '{not json');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/the payload in standard input is not JSON/);
    const missing = await drover(['jobs', 'enqueue', 'greet', '--payload-file', join(dir, 'nope.json')]);
    expect(missing.stderr).toMatch(/cannot read the payload file .*nope\.json/);
    const both = await drover(['jobs', 'enqueue', 'greet', '--payload', '{}', '--payload-file', '-']);
    expect(both.stderr).toMatch(/either --payload or --payload-file/);
    const attempts = await drover(['jobs', 'enqueue', 'greet', '--max-attempts', '0']);
    expect(attempts.stderr).toMatch(/--max-attempts.*expected a number of attempts/);
    expect((await api(node.url, KEY, 'GET', '/v1/jobs?limit=100')).body).toEqual(before);
  });
});
