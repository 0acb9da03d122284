/**
 * The `http` action against a local REST endpoint: method, headers, a JSON
 * body template (values keep their types; data cannot break out of a
 * string), a text body declared JSON (escaped), expected statuses, the
 * answer stored as the job's result, and credentials kept out of answers.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { retryAfterMs } from '../../src/runtime/actions/http.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { actionConfig, createTrigger, send, settled } from './support.js';

interface Request {
  at: number;
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

let node: TestNode | undefined;
const servers: Server[] = [];
afterEach(async () => {
  await node?.close();
  node = undefined;
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});

async function api(answer: (r: Request, n: number) => { status: number; body?: string; headers?: Record<string, string> }): Promise<{ base: string; requests: Request[] }> {
  const requests: Request[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const r = { method: req.method!, url: req.url!, headers: req.headers, body, at: Date.now() };
      requests.push(r);
      const out = answer(r, requests.length);
      res.writeHead(out.status, { 'content-type': 'application/json', ...out.headers }).end(out.body ?? '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

const API_KEY = 'sk_live_http_action_4f1d2c';

describe('http action', () => {
  it('calls the API with the templated JSON body and stores its answer as the result', async () => {
    const target = await api(() => ({ status: 201, body: '{"created":"inv_9"}' }));
    node = await startTestNode(actionConfig());
    const { body: created } = await createTrigger(node, {
      type: 'http',
      url: `${target.base}/v1/invoices?api_key=${API_KEY}`,
      method: 'PUT',
      headers: { Authorization: `Bearer ${API_KEY}`, 'X-Team': 'billing' },
      body: { order: '{{data.orderId}}', amount: '{{data.amount}}', note: 'for {{data.customer}}', event: '{{event.name}}', fixed: 1 },
      expectedStatuses: [201],
    });
    expect(created.secret).toBeUndefined();
    expect(created.action).toMatchObject({ type: 'http', method: 'PUT', headers: { Authorization: '[redacted]', 'X-Team': '[redacted]' }, url: `${target.base}/v1/invoices?api_key=[redacted]` });
    expect(JSON.stringify(created)).not.toContain(API_KEY);

    const id = await send(node, 'drover.http', { orderId: 'o-17', amount: 12.5, customer: 'Ada "the" <Countess>' });
    const done = await settled(node, id);
    expect(done.state).toBe('succeeded');
    expect(done.result).toEqual({ status: 201, body: { created: 'inv_9' } });
    const r = target.requests[0]!;
    expect(r.method).toBe('PUT');
    expect(r.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(r.headers['content-type']).toBe('application/json');
    expect(JSON.parse(r.body)).toEqual({ order: 'o-17', amount: 12.5, note: 'for Ada "the" <Countess>', event: 'order.created', fixed: 1 });
    const shown = [(await node.request('GET', '/v1/triggers')).body, (await node.request('GET', '/v1/audit')).body, node.logLines];
    expect(JSON.stringify(shown)).not.toContain(API_KEY);
  });

  it('escapes values in a text body declared JSON, so data cannot add members', async () => {
    const target = await api(() => ({ status: 200 }));
    node = await startTestNode(actionConfig());
    await createTrigger(node, { type: 'http', url: `${target.base}/in`, headers: { 'content-type': 'application/json' }, body: '{"note":"{{data.note}}","admin":false}' });
    const id = await send(node, 'drover.http', { note: 'x","admin":true,"y":"' });
    expect((await settled(node, id)).state).toBe('succeeded');
    expect(JSON.parse(target.requests[0]!.body)).toEqual({ note: 'x","admin":true,"y":"', admin: false });
  });

  it('an unexpected status fails: 4xx at once (the answer in the error, credentials scrubbed), 5xx with retries', async () => {
    const target = await api((r) => (r.url.startsWith('/refuse') ? { status: 404, body: `{"error":"no such order","echo":"${String(r.headers.authorization)}"}` } : { status: 503 }));
    node = await startTestNode(actionConfig({ webhooks: { maxAttempts: 2 } }));
    await createTrigger(node, { type: 'http', url: `${target.base}/refuse`, method: 'GET', headers: { Authorization: API_KEY } }, 'refuse.*');
    await createTrigger(node, { type: 'http', url: `${target.base}/busy`, method: 'DELETE' }, 'busy.*');
    const refused = await settled(node, await send(node, 'drover.http', {}, 'refuse.now'));
    expect(refused).toMatchObject({ state: 'dead', deadReason: 'non_retryable' });
    expect(refused.lastError).toContain('HTTP 404');
    expect(refused.lastError).toContain('no such order');
    expect(refused.lastError).not.toContain(API_KEY);
    const busy = await settled(node, await send(node, 'drover.http', {}, 'busy.now'));
    expect(busy).toMatchObject({ state: 'dead', deadReason: 'exhausted' });
    expect(busy.attempts).toHaveLength(2);
    expect(target.requests.filter((r) => r.url === '/busy').map((r) => r.method)).toEqual(['DELETE', 'DELETE']);
  });

  it('honours Retry-After on 429: nothing goes to the target before it passes', async () => {
    const target = await api((_r, n) => (n === 1 ? { status: 429, body: 'slow down', headers: { 'retry-after': '3' } } : { status: 200 }));
    node = await startTestNode(actionConfig());
    await createTrigger(node, { type: 'http', url: `${target.base}/limited` });
    const done = await settled(node, await send(node, 'drover.http', {}));
    expect(done.state).toBe('succeeded');
    expect(target.requests).toHaveLength(2);
    // The backoff alone (1 s, full jitter) would have retried sooner.
    expect(target.requests[1]!.at - target.requests[0]!.at).toBeGreaterThanOrEqual(2_900);
    const breakers = (await node.request('GET', '/v1/triggers')).body.breakers as Record<string, { state: string }>;
    expect(breakers[new URL(target.base).host]).toMatchObject({ state: 'closed' });
  });

  it('refuses bad actions with 422: a body on GET, an expression in a template, a reserved header, a bad status', async () => {
    node = await startTestNode(actionConfig());
    const bad = [
      { type: 'http', url: 'http://127.0.0.1:9/x', method: 'GET', body: { a: 1 } },
      { type: 'http', url: 'http://127.0.0.1:9/x', body: { a: '{{data.a.constructor("x")}}' } },
      { type: 'http', url: 'http://127.0.0.1:9/x', body: '{{secrets.x}}' },
      { type: 'http', url: 'http://127.0.0.1:9/x', headers: { Host: 'evil' } },
      { type: 'http', url: 'http://127.0.0.1:9/x', expectedStatuses: [99] },
      { type: 'http', url: 'http://127.0.0.1:9/x', secret: 'only-webhooks-have-this' },
      { type: 'carrier-pigeon', url: 'http://127.0.0.1:9/x' },
    ];
    for (const action of bad) {
      const res = await node.request('POST', '/v1/triggers', { on: 'order.*', action });
      expect(res.status, JSON.stringify(action)).toBe(422);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    }
  });
});

describe('retryAfterMs', () => {
  it('reads seconds and HTTP dates, caps at an hour, and ignores what it cannot read', () => {
    const now = Date.parse('2026-12-04T12:00:00Z');
    expect(retryAfterMs('3', now)).toBe(3_000);
    expect(retryAfterMs(['120'], now)).toBe(120_000);
    expect(retryAfterMs('Fri, 04 Dec 2026 12:00:30 GMT', now)).toBe(30_000);
    expect(retryAfterMs('999999', now)).toBe(3_600_000);
    for (const bad of [undefined, '', 'soon', '-5', '0', 'Fri, 04 Dec 2026 11:00:00 GMT']) expect(retryAfterMs(bad, now), String(bad)).toBeNull();
  });
});
