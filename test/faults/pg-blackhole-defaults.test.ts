/**
 * The black hole with the default deadlines (10 s statement, 12 s query, 5 s
 * connect): what an operator gets without tuning. A request already waiting
 * on the store when the path goes silent is answered 503 as soon as the node
 * knows the store is unreachable (a few seconds), not at its 12 s deadline;
 * readiness turns 503 and back to 200 by itself. See pg-blackhole.test.ts for
 * the scenarios with short deadlines (peer recovery, resets). A slow path
 * (every chunk delayed) must not count as a lost store.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait-for.js';
import { alive, assertPostgres, call, cleanUp, count, endPool, enqueue, expectAllSucceededOnce, freshSchema, proxied, ready, startNode } from './pg-faults.js';

beforeAll(assertPostgres);
afterEach(cleanUp);
afterAll(endPool);

describe('PostgreSQL black hole, default deadlines', () => {
  it('answers a request caught in flight with 503 within seconds, not its 12 s deadline; healed, every job finishes once', { timeout: 60_000 }, async () => {
    await freshSchema();
    const { proxy, url } = await proxied();
    const node = await startNode('node-a', url, { JOB_MS: '50', PG_FAULTS_DEADLINES: 'default' });
    await waitFor(async () => (await ready(node)) === 200, { timeoutMs: 10_000, message: 'node-a ready' });
    const ids = await enqueue(node, 100);
    await waitFor(async () => (await count('SELECT count(DISTINCT job_id)::int AS n FROM $schema.side_effects')) >= 10, {
      timeoutMs: 15_000,
      message: 'some jobs ran',
    });

    proxy.blackhole();
    const lostAt = Date.now();
    // Caught in flight: its statement never gets an answer.
    const inFlight = call(node, 'POST', '/v1/jobs', { handler: 'record', payload: { inFlight: true } }, 11_000);
    await waitFor(async () => (await ready(node)) === 503, { timeoutMs: 10_000, intervalMs: 50, message: '/health/ready is 503' });
    const notReadyMs = Date.now() - lostAt;
    const caught = await inFlight;
    expect(caught.status).toBe(503);
    expect(caught.body.type).toBe('https://drover.dev/problems/store-unavailable');
    expect(caught.ms, 'the in-flight request was answered well before its 12 s deadline').toBeLessThan(6_000);
    const refused = await call(node, 'POST', '/v1/events', { name: 'x', data: {} }, 5_000);
    expect(refused.status).toBe(503);
    expect(refused.ms).toBeLessThan(1_000);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);

    proxy.heal();
    const healedAt = Date.now();
    await waitFor(async () => (await ready(node)) === 200, { timeoutMs: 15_000, intervalMs: 50, message: '/health/ready is 200 again' });
    const readyAgainMs = Date.now() - healedAt;
    await expectAllSucceededOnce(ids, 40_000);
    expect(alive(node)).toBe(true);
    console.log(`[pg-blackhole defaults] store lost -> readiness 503: ${notReadyMs} ms; in-flight intake answered 503 after ${caught.ms} ms; healed -> readiness 200: ${readyAgainMs} ms`);
  });

  it('a slow path (250 ms each way) is slow, not down: readiness stays 200, intake is accepted, jobs finish', { timeout: 60_000 }, async () => {
    await freshSchema();
    const { proxy, url } = await proxied();
    const node = await startNode('node-a', url, { JOB_MS: '10', PG_FAULTS_DEADLINES: 'default' });
    await waitFor(async () => (await ready(node)) === 200, { timeoutMs: 10_000, message: 'node-a ready' });
    proxy.delay(250);
    const ids = await enqueue(node, 20);
    for (let i = 0; i < 5; i++) expect(await ready(node)).toBe(200);
    await expectAllSucceededOnce(ids, 40_000);
    const metrics = await (await fetch(`${node.url}/metrics`)).text();
    expect(metrics).toMatch(/^drover_store_up\{engine="postgres"\} 1$/m);
    proxy.delay(0);
    expect(alive(node)).toBe(true);
  });
});
