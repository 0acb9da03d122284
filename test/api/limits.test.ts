/**
 * Rate limits (per key and per route, 429 with Retry-After and RateLimit-*),
 * size limits (413/422), media types, and request ids in answers and logs.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';
import { injectAs, keyWith } from './support.js';

let node: TestNode | undefined;
afterEach(async () => {
  await node?.close();
  node = undefined;
});

const handlers = [{ name: 'h', on: 'a.b', run: async () => undefined }, { name: 'r', remote: true }];

describe('rate limits', () => {
  it('limits each key on each route separately and answers 429 problem+json with Retry-After and RateLimit-*', async () => {
    const n = (node = await startTestNode({ handlers, rateLimit: { max: 3, windowMs: 60_000, routes: { 'POST /v1/events': 5 } } }));
    const reader = await keyWith(n, ['read']);
    const remaining: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await n.request('GET', '/v1/status');
      expect(res.status).toBe(200);
      expect(res.headers['ratelimit-limit']).toBe('3');
      remaining.push(res.headers['ratelimit-remaining']);
    }
    expect(remaining).toEqual(['2', '1', '0']);
    const limited = await n.request('GET', '/v1/status');
    expect(limited.status).toBe(429);
    expect(limited.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(limited.body).toMatchObject({ type: 'https://drover.dev/problems/rate-limited', status: 429, limit: 3 });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(60);
    expect(limited.headers['ratelimit-remaining']).toBe('0');
    expect(limited.headers['ratelimit-reset']).toBe(limited.headers['retry-after']);

    // Another key on the same route, and the same key on another route, have their own budgets.
    expect((await injectAs(n, reader, 'GET', '/v1/status')).status).toBe(200);
    expect((await n.request('GET', '/v1/handlers')).status).toBe(200);
    // Probes are never limited.
    for (let i = 0; i < 5; i++) {
      const probe = await n.request('GET', '/health/live');
      expect(probe.status).toBe(200);
      expect(probe.headers['ratelimit-limit']).toBeUndefined();
    }
  });

  it('applies per-route overrides, and a refused request writes nothing', async () => {
    const n = (node = await startTestNode({ handlers, rateLimit: { max: 1, windowMs: 60_000, routes: { 'POST /v1/events': 4 } } }));
    for (let i = 0; i < 4; i++) expect((await n.request('POST', '/v1/events', { name: 'a.b', id: `ev-${i}` })).status).toBe(202);
    const refused = await n.request('POST', '/v1/events', { name: 'a.b', id: 'ev-refused' });
    expect(refused.status).toBe(429);
    expect(refused.headers['ratelimit-limit']).toBe('4');
    const key = await keyWith(n, ['read']);
    expect((await injectAs(n, key, 'GET', '/v1/events/ev-refused')).status).toBe(404);
    expect((await n.request('GET', '/v1/events/ev-3')).status).toBe(200);
  });

  it('lets the key in again when the window has passed', async () => {
    const n = (node = await startTestNode({ handlers, rateLimit: { max: 1, windowMs: 300 } }));
    expect((await n.request('GET', '/v1/queues')).status).toBe(200);
    expect((await n.request('GET', '/v1/queues')).status).toBe(429);
    await waitFor(async () => (await n.request('GET', '/v1/queues')).status === 200, { intervalMs: 50, timeoutMs: 5_000 });
  });

  it('can be turned off', async () => {
    const n = (node = await startTestNode({ handlers, rateLimit: { enabled: false, max: 1 } }));
    for (let i = 0; i < 5; i++) {
      const res = await n.request('GET', '/v1/status');
      expect(res.status).toBe(200);
      expect(res.headers['ratelimit-limit']).toBeUndefined();
    }
  });
});

describe('size and shape limits', () => {
  it('answers 413 for a body over limits.maxPayloadBytes on every route that takes one', async () => {
    const n = (node = await startTestNode({ handlers, limits: { maxPayloadBytes: 2_048 }, rateLimit: { enabled: false } }));
    const big = 'x'.repeat(4_096);
    const cases: Array<[string, unknown]> = [
      ['/v1/events', { name: 'a.b', data: { big } }],
      ['/v1/events', { events: [{ name: 'a.b', data: { big: big.slice(0, 1_500) } }, { name: 'a.b', data: { big: big.slice(0, 1_500) } }] }],
      ['/v1/jobs', { handler: 'h', payload: big }],
      ['/v1/workers/complete', { jobId: '1', token: 't', result: big }],
      ['/v1/keys', { name: big, scopes: ['read'] }],
    ];
    for (const [url, body] of cases) {
      const res = await n.request('POST', url, body);
      expect(res.status, url).toBe(413);
      expect(res.body.type).toBe('https://drover.dev/problems/payload-too-large');
    }
    expect((await n.request('GET', '/v1/jobs')).body.jobs).toEqual([]);
  });

  it('answers 422 for batches over 1,000, 415 for other media types and 400 for broken JSON', async () => {
    const n = (node = await startTestNode({ handlers, rateLimit: { enabled: false } }));
    const batch = await n.request('POST', '/v1/jobs', { jobs: Array.from({ length: 1_001 }, () => ({ handler: 'r' })) });
    expect(batch.status).toBe(422);
    expect(batch.body.detail).toBe('body.jobs: must NOT have more than 1000 items (and 3 more)');
    const media = await n.request('POST', '/v1/events', 'name=a.b', { 'content-type': 'application/x-www-form-urlencoded' });
    expect(media.status).toBe(415);
    expect(media.body.type).toBe('https://drover.dev/problems/unsupported-media-type');
    const broken = await n.request('POST', '/v1/workers/lease', '{"handlers": [', { 'content-type': 'application/json' });
    expect(broken.status).toBe(400);
    expect(broken.body.type).toBe('https://drover.dev/problems/malformed-json');
    expect((await n.request('GET', '/v1/jobs')).body.jobs).toEqual([]);
  });
});

describe('X-Request-Id', () => {
  it('echoes a sane id, replaces an unsafe one, and generates one when absent', async () => {
    const n = (node = await startTestNode({ handlers, rateLimit: { enabled: false } }));
    expect((await n.request('GET', '/v1/status', undefined, { 'x-request-id': 'abc-123.x:y' })).headers['x-request-id']).toBe('abc-123.x:y');
    const unsafe = await n.request('GET', '/v1/status', undefined, { 'x-request-id': 'a b\tc' });
    expect(unsafe.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect((await n.request('GET', '/v1/status')).headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const problem = await n.request('GET', '/v1/jobs/404404', undefined, { 'x-request-id': 'trace-me' });
    expect(problem.body.request_id).toBe('trace-me');
  });

  it('is in every log line written while answering the request', async () => {
    const n = (node = await startTestNode({ handlers, rateLimit: { enabled: false } }));
    // Make the store fail so the request logs an error on its way to a 500.
    n.store.getJob = async () => {
      throw new Error('disk on fire');
    };
    const before = n.logLines.length;
    const res = await n.request('GET', '/v1/jobs/1', undefined, { 'x-request-id': 'req-500-a' });
    expect(res.status).toBe(500);
    expect(res.body).toMatchObject({ type: 'https://drover.dev/problems/internal', request_id: 'req-500-a' });
    const lines = n.logLines.slice(before);
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line.request_id).toBe('req-500-a');

    const pauseFrom = n.logLines.length;
    await n.request('POST', '/v1/handlers/h/pause', undefined, { 'x-request-id': 'req-pause-b' });
    const pauseLines = n.logLines.slice(pauseFrom);
    expect(pauseLines.map((l) => l.msg)).toContain('handler paused');
    for (const line of pauseLines) expect(line.request_id).toBe('req-pause-b');
  });
});
