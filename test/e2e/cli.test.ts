/**
 * The CLI as a user runs it: `drover start` prints the ready line and, on the
 * very first start only, an admin key; events sent over HTTP run; SIGTERM exits 0.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { api, killAllChildren, startChildNode } from '../helpers/child-node.js';
import { waitFor } from '../helpers/wait-for.js';

const CONFIG = fileURLToPath(new URL('../fixtures/hello.config.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'drover-cli-'));
afterAll(async () => {
  await killAllChildren();
  rmSync(dir, { recursive: true, force: true });
});

describe('drover start', () => {
  it('comes up on SQLite with a TypeScript config, prints the admin key once, runs events, exits 0 on SIGTERM', { timeout: 60_000 }, async () => {
    const env = { DROVER_DATABASE_URL: join(dir, 'first.db') };
    const first = await startChildNode({ config: CONFIG, env });
    expect(first.stdout.some((l) => /^drover ready handlers=1 queues=1 store=sqlite channel=production url=http:\/\/127\.0\.0\.1:\d+$/.test(l))).toBe(true);
    const keyLine = first.stdout.find((l) => l.startsWith('drover admin key'));
    const key = /(drv_\S+)$/.exec(keyLine ?? '')?.[1];
    expect(key).toBeDefined();

    const sent = await api(first.url, key!, 'POST', '/v1/events', { name: 'hello.world', data: { who: 'ops' }, id: 'evt-1' });
    expect(sent.status).toBe(202);
    const jobId = sent.body.jobs[0].id;
    const job = await waitFor(async () => {
      const res = await api(first.url, key!, 'GET', `/v1/jobs/${jobId}`);
      return res.body.state === 'succeeded' ? res.body : null;
    });
    expect(job.result).toEqual({ greeted: 'ops' });

    first.child.kill('SIGTERM');
    expect(await first.exited).toEqual({ code: 0, signal: null });

    const second = await startChildNode({ config: CONFIG, env });
    expect(second.stdout.some((l) => l.startsWith('drover admin key'))).toBe(false);
    expect((await api(second.url, key!, 'GET', `/v1/jobs/${jobId}`)).body.state).toBe('succeeded');
    second.child.kill('SIGINT');
    expect(await second.exited).toEqual({ code: 0, signal: null });
  });

  it('uses DROVER_BOOTSTRAP_ADMIN_KEY as the first key', { timeout: 30_000 }, async () => {
    const key = 'drv_bootstrap_key_for_automation_0001';
    const node = await startChildNode({ config: CONFIG, env: { DROVER_DATABASE_URL: join(dir, 'boot.db'), DROVER_BOOTSTRAP_ADMIN_KEY: key } });
    expect(node.stdout.join('\n')).not.toContain(key);
    expect((await api(node.url, key, 'GET', '/v1/status')).status).toBe(200);
    node.child.kill('SIGTERM');
    expect((await node.exited).code).toBe(0);
  });

  it('refuses a second node on the same SQLite file with a clear message', { timeout: 30_000 }, async () => {
    const env = { DROVER_DATABASE_URL: join(dir, 'locked.db') };
    const node = await startChildNode({ config: CONFIG, env });
    await expect(startChildNode({ config: CONFIG, env })).rejects.toThrow(/in use by drover pid/);
    node.child.kill('SIGTERM');
    await node.exited;
  });

  it('names the bad key when the config is invalid', { timeout: 30_000 }, async () => {
    const bad = fileURLToPath(new URL('../fixtures/invalid.config.mjs', import.meta.url));
    await expect(startChildNode({ config: bad, env: { DROVER_DATABASE_URL: join(dir, 'bad.db') } })).rejects.toThrow(/handlers\[0\]\.concurrency/);
  });
});
