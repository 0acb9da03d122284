/**
 * Feature gates as handlers see them (`ctx.features`), inline and in a
 * worker thread, with a TypeScript config outside the repository started the
 * user's way (`bin/drover start`); an operator flips a gate on the running
 * node and the next job sees it. The `durable-steps` gate turned off fails a
 * job's step attempt (retryably); turned back on, the retry succeeds.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, killAllChildren, startChildNode, type ChildNode } from '../helpers/child-node.js';
import { waitFor } from '../helpers/wait-for.js';

const KEY = 'drv_features_admin_key_000000000001';
const root = mkdtempSync(join(tmpdir(), 'drover-features-'));

const CONFIG_TS = `
import { defineConfig, defineHandler } from 'drover';
import { isMainThread } from 'node:worker_threads';

const price = defineHandler({ name: 'price', async run(ctx) { return { newPricing: ctx.features.enabled('new-pricing'), unknown: ctx.features.enabled('nope') }; } });
const priceThread = defineHandler({ name: 'price-thread', isolation: 'thread', async run(ctx) { return { newPricing: ctx.features.enabled('new-pricing'), thread: !isMainThread }; } });
const stepper = defineHandler({
  name: 'stepper',
  retry: { maxAttempts: 5, backoff: { initialMs: 200, maxMs: 400, jitter: 'none' } },
  async run(ctx) { return ctx.step.run('only', () => 'done'); },
});

export default defineConfig({ handlers: [price, priceThread, stepper], rollout: { channel: 'staging', featureGates: { 'new-pricing': false } } });
`;

let node: ChildNode;
beforeAll(async () => {
  const config = join(root, 'drover.config.ts');
  writeFileSync(config, CONFIG_TS);
  node = await startChildNode({ config, cwd: root, env: { DROVER_DATABASE_URL: join(root, 'drover.db'), DROVER_BOOTSTRAP_ADMIN_KEY: KEY }, timeoutMs: 30_000 });
});
afterAll(async () => {
  await killAllChildren();
  rmSync(root, { recursive: true, force: true });
});

async function run(handler: string): Promise<any> {
  const created = await api(node.url, KEY, 'POST', '/v1/jobs', { handler, payload: {} });
  expect(created.status).toBe(202);
  return waitFor(async () => {
    const { body } = await api(node.url, KEY, 'GET', `/v1/jobs/${created.body.id}`);
    return ['succeeded', 'dead'].includes(body.state) ? body : null;
  }, { timeoutMs: 20_000, message: `${handler} job to finish` });
}

const setGate = (name: string, enabled: boolean | null) => api(node.url, KEY, 'POST', `/v1/gates/${name}`, { enabled });

describe('ctx.features in handlers', () => {
  it('says the channel in the ready line, and handlers inline and in threads read the gates an operator flips live', async () => {
    expect(node.stdout.find((l) => l.startsWith('drover ready'))).toMatch(/ channel=staging /);
    expect((await run('price')).result).toEqual({ newPricing: false, unknown: false });
    expect((await run('price-thread')).result).toEqual({ newPricing: false, thread: true });
    expect((await setGate('new-pricing', true)).status).toBe(200);
    expect((await run('price')).result).toEqual({ newPricing: true, unknown: false });
    expect((await run('price-thread')).result).toEqual({ newPricing: true, thread: true });
  });

  it('durable-steps off fails the step attempt with what to do; back on, the retry succeeds', async () => {
    expect((await setGate('durable-steps', false)).status).toBe(200);
    const created = await api(node.url, KEY, 'POST', '/v1/jobs', { handler: 'stepper', payload: {} });
    const id = created.body.id as string;
    const failed = await waitFor(async () => {
      const { body } = await api(node.url, KEY, 'GET', `/v1/jobs/${id}`);
      return body.lastError ? body : null;
    }, { timeoutMs: 20_000, message: 'the first attempt to fail' });
    expect(failed.lastError).toMatch(/durable steps are turned off on this node \(feature gate durable-steps\); turn them on/);
    expect((await setGate('durable-steps', null)).status).toBe(200);
    const done = await waitFor(async () => {
      const { body } = await api(node.url, KEY, 'GET', `/v1/jobs/${id}`);
      return body.state === 'succeeded' ? body : null;
    }, { timeoutMs: 20_000, message: 'the retry to succeed' });
    expect(done.result).toBe('done');
  });
});
