/**
 * Quarantine and circuit breaker end to end: a failing handler is
 * quarantined (its other jobs wait, unfailed, across a restart), reset brings
 * it back and the waiting jobs run; a breaker opens, holds jobs without
 * spending attempts, probes after the cool-down and closes on success.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { DroverConfig } from '../../src/core/handler.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';

let node: TestNode | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await node?.close();
  node = undefined;
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

let broken = true;
// Retries are due 30 ms later: a retry leased in the same group commit as the failure that opened the breaker would run before the outcome is known.
const fast = { maxAttempts: 20, backoff: { initialMs: 30, maxMs: 30, jitter: 'none' as const } };

const enqueue = async (n: TestNode, handler: string): Promise<string> => {
  const res = await n.request('POST', '/v1/jobs', { handler, payload: {} });
  expect(res.status).toBe(202);
  return res.body.id as string;
};
/** State and spent attempts (failed or succeeded; a lease handed back unstarted spends nothing). */
const job = async (n: TestNode, id: string) => {
  const body = (await n.request('GET', `/v1/jobs/${id}`)).body as { state: string; attempts: Array<{ outcome: string }> };
  return { state: body.state, attempts: body.attempts.filter((a) => a.outcome !== 'released').length };
};
const handlerView = async (n: TestNode, name: string) => ((await n.request('GET', '/v1/handlers')).body.handlers as Array<Record<string, any>>).find((h) => h.name === name)!;

describe('quarantine', () => {
  const config = (): Omit<DroverConfig, 'databaseUrl'> => ({
    handlers: [
      {
        name: 'fragile',
        retry: fast,
        quarantine: { failures: 3, windowMs: 60_000 },
        breaker: { failures: 1000, minRequests: 1000 },
        run: async () => {
          if (broken) throw new Error('downstream says no');
          return 'ok';
        },
      },
      { name: 'healthy', run: async () => 'fine' },
    ],
    rateLimit: { enabled: false },
  });

  it('quarantines after N failures, keeps jobs waiting across a restart, and reset runs them', async () => {
    broken = true;
    const dir = mkdtempSync(join(tmpdir(), 'drover-quarantine-'));
    dirs.push(dir);
    node = await startTestNode(config(), { dir });
    const first = await enqueue(node, 'fragile');
    await waitFor(async () => (await handlerView(node!, 'fragile')).quarantined === true, { message: 'quarantined' });
    expect((await job(node, first)).attempts).toBe(3);
    const waiting = await enqueue(node, 'fragile');
    // Other handlers keep running while one is quarantined.
    const other = await enqueue(node, 'healthy');
    await waitFor(async () => (await job(node!, other)).state === 'succeeded', { message: 'healthy job ran' });
    const status = (await node.request('GET', '/v1/status')).body;
    expect(status.quarantinedHandlers).toEqual(['fragile']);
    const metrics = (await node.app.inject({ url: '/metrics' })).body;
    expect(metrics).toMatch(/drover_handler_quarantined\{handler="fragile"\} 1/);

    await node.close();
    node = await startTestNode(config(), { dir });
    const view = await handlerView(node, 'fragile');
    expect(view.quarantined).toBe(true);
    expect(view.quarantinedAt).toEqual(expect.any(String));
    expect(await job(node, waiting)).toMatchObject({ state: 'queued', attempts: 0 });

    broken = false;
    const reset = await node.request('POST', '/v1/handlers/fragile/reset');
    expect(reset.status).toBe(200);
    expect(reset.body.quarantined).toBe(false);
    await waitFor(async () => (await job(node!, waiting)).state === 'succeeded', { message: 'waiting job ran after reset' });
    await waitFor(async () => (await job(node!, first)).state === 'succeeded', { message: 'first job ran after reset' });
    const audit = (await node.request('GET', '/v1/audit')).body;
    expect(JSON.stringify(audit)).toContain('handler.reset');
  });
});

describe('circuit breaker', () => {
  it('opens after consecutive failures, holds jobs without spending attempts, probes after the cool-down and closes', async () => {
    broken = true;
    node = await startTestNode({
      handlers: [
        {
          name: 'flaky',
          retry: fast,
          quarantine: { failures: 1000 },
          breaker: { failures: 2, coolDownMs: 400 },
          run: async () => {
            if (broken) throw new Error('downstream is down');
            return 'ok';
          },
        },
      ],
      rateLimit: { enabled: false },
    });
    const id = await enqueue(node, 'flaky');
    await waitFor(async () => (await handlerView(node!, 'flaky')).breaker.state === 'open', { message: 'breaker open' });
    const held = await job(node, id);
    expect(held.attempts).toBe(2);
    expect((await node.request('GET', '/v1/status')).body.openBreakers).toEqual(['flaky']);
    // While open nothing is dispatched: the job keeps its attempt count until the probe.
    const view = await handlerView(node, 'flaky');
    expect(view.breaker.probeAt).toEqual(expect.any(String));
    expect((await job(node, id)).attempts).toBe(2);

    broken = false;
    await waitFor(async () => (await job(node!, id)).state === 'succeeded', { message: 'probe succeeded', timeoutMs: 5_000 });
    expect((await job(node, id)).attempts).toBe(3);
    await waitFor(async () => (await handlerView(node!, 'flaky')).breaker.state === 'closed', { message: 'breaker closed' });
  });
});
