/**
 * The built-in webhook action through the HTTP API against a local receiver:
 * signed deliveries, retries on 5xx, no retry on 4xx, the per-host breaker
 * (opens while the receiver is down, jobs wait unspent, closes when it is
 * back), the SSRF guard, and trigger create/list/delete with audit records.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { DroverConfig } from '../../src/core/handler.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';

interface Received {
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

/** A receiver answering with `answer(n)` for the n-th request (1-based). */
async function receiver(answer: (n: number) => number, port = 0): Promise<{ url: string; port: number; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      res.statusCode = answer(received.length);
      res.end(res.statusCode >= 400 ? 'nope' : 'ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  servers.push(server);
  const bound = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${bound}/hook`, port: bound, received, server };
}

const config = (webhooks: DroverConfig['webhooks'] = {}): Omit<DroverConfig, 'databaseUrl'> => ({
  handlers: [{ name: 'noop', on: 'never.sent', run: () => null }],
  rateLimit: { enabled: false },
  webhooks: { allowPrivateNetworks: true, breaker: { failures: 3, minRequests: 1000, coolDownMs: 400 }, ...webhooks },
});

const SECRET = 'whsec_test_secret_0123456789';

async function createTrigger(n: TestNode, url: string, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await n.request('POST', '/v1/triggers', { on: 'order.*', action: { type: 'webhook', url, secret: SECRET, ...extra } });
  expect(res.status).toBe(201);
  return res.body.id as string;
}

/** Send an event; the id of the webhook job it fanned out to. */
async function send(n: TestNode, data: unknown = { amount: 5 }): Promise<string> {
  const res = await n.request('POST', '/v1/events', { name: 'order.created', data });
  expect(res.status).toBe(202);
  const event = await n.request('GET', `/v1/events/${res.body.id as string}`);
  const job = (event.body.jobs as Array<{ id: string; handler: string }>).find((j) => j.handler === 'drover.webhook');
  expect(job).toBeDefined();
  return job!.id;
}

/** Write triggers straight into the store, past the create-time check, as an older node would have. */
async function storeTriggers(n: TestNode, urls: string[]): Promise<void> {
  const triggers = urls.map((url, i) => ({ id: `trg_stored_${i}`, on: 'order.*', filter: null, action: { type: 'webhook', url, secret: SECRET, timeoutMs: null, headers: {} }, createdAt: Date.now() }));
  await n.store.updateMeta('webhook_triggers', () => JSON.stringify(triggers));
  await n.runtime.triggers.load();
}

const jobView = async (n: TestNode, id: string) => {
  const body = (await n.request('GET', `/v1/jobs/${id}`)).body as { state: string; deadReason: string | null; lastError: string | null; attempts: Array<{ outcome: string }> };
  return { ...body, spent: body.attempts.filter((a) => a.outcome !== 'released').length };
};

/** What a receiver does (docs/webhooks.md): recompute the HMAC over "<delivery id>.<timestamp>.<raw body>" and compare in constant time. */
function verify(secret: string, r: Received): boolean {
  const id = String(r.headers['x-drover-delivery']);
  const timestamp = String(r.headers['x-drover-timestamp']);
  const expected = Buffer.from(`v1=${createHmac('sha256', secret).update(`${id}.${timestamp}.${r.body}`).digest('hex')}`);
  const given = Buffer.from(String(r.headers['x-drover-signature']));
  return given.length === expected.length && timingSafeEqual(given, expected) && Math.abs(Date.now() / 1000 - Number(timestamp)) < 300;
}

describe('webhook action', () => {
  it('delivers the event signed, and the signature verifies', async () => {
    const hook = await receiver(() => 204);
    node = await startTestNode(config());
    const triggerId = await createTrigger(node, hook.url, { headers: { 'x-team': 'billing' } });
    const jobId = await send(node, { amount: 42 });
    await waitFor(async () => (await jobView(node!, jobId)).state === 'succeeded', { message: 'delivery succeeded' });
    expect(hook.received).toHaveLength(1);
    const r = hook.received[0]!;
    expect(verify(SECRET, r)).toBe(true);
    expect(verify('whsec_some_other_secret_000', r)).toBe(false);
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.headers['x-team']).toBe('billing');
    expect(r.headers['x-drover-delivery']).toBe(jobId);
    expect(JSON.parse(r.body)).toMatchObject({ name: 'order.created', data: { amount: 42 }, trigger: triggerId });
    // A tampered body does not verify.
    expect(verify(SECRET, { ...r, body: r.body.replace('42', '43') })).toBe(false);
  });

  it('retries on 500 until the receiver accepts', async () => {
    const hook = await receiver((n) => (n <= 2 ? 500 : 200));
    node = await startTestNode(config());
    await createTrigger(node, hook.url);
    const jobId = await send(node);
    await waitFor(async () => (await jobView(node!, jobId)).state === 'succeeded', { timeoutMs: 15_000, message: 'delivered after retries' });
    const job = await jobView(node, jobId);
    expect(job.spent).toBe(3);
    expect(hook.received).toHaveLength(3);
  });

  it('stops on 400 (non-retryable) but retries 429', async () => {
    const hook = await receiver(() => 400);
    node = await startTestNode(config());
    await createTrigger(node, hook.url);
    const jobId = await send(node);
    await waitFor(async () => (await jobView(node!, jobId)).state === 'dead', { message: 'dead after 400' });
    const job = await jobView(node, jobId);
    expect(job).toMatchObject({ deadReason: 'non_retryable', spent: 1 });
    expect(job.lastError).toContain('HTTP 400');
    expect(hook.received).toHaveLength(1);

    const limited = await receiver((n) => (n === 1 ? 429 : 200));
    await createTrigger(node, limited.url);
    const retried = (await node.request('POST', '/v1/events', { name: 'order.created', data: {} })).body.id as string;
    const jobs = (await node.request('GET', `/v1/events/${retried}`)).body.jobs as Array<{ id: string }>;
    expect(jobs).toHaveLength(2);
    await waitFor(async () => limited.received.length === 2, { timeoutMs: 15_000, message: '429 retried' });
  });

  it('opens the host breaker while the receiver is down (jobs wait unspent) and closes when it returns', async () => {
    const hook = await receiver(() => 200);
    const { port } = hook;
    await new Promise<void>((resolve) => hook.server.close(() => resolve()));
    servers.splice(servers.indexOf(hook.server), 1);
    node = await startTestNode(config({ maxAttempts: 20 }));
    await createTrigger(node, hook.url);
    const host = `127.0.0.1:${port}`;
    const first = await send(node);
    const breaker = async () => ((await node!.request('GET', '/v1/triggers')).body.breakers as Record<string, { state: string }>)[host]?.state;
    await waitFor(async () => (await breaker()) === 'open', { timeoutMs: 15_000, message: 'breaker opened' });
    const spentWhenOpened = (await jobView(node, first)).spent;
    expect(spentWhenOpened).toBe(3);
    // More deliveries to the same host while it is open: none is attempted.
    const second = await send(node);
    const held = await waitFor(async () => {
      const j = await jobView(node!, second);
      return j.state === 'scheduled' && j.attempts.some((a) => a.outcome === 'released') ? j : null;
    }, { message: 'second delivery held back' });
    expect(held.spent).toBe(0);

    // The receiver comes back on the same port: the probe after the cool-down succeeds and the breaker closes.
    const back = await receiver(() => 200, port);
    await waitFor(async () => (await jobView(node!, first)).state === 'succeeded' && (await jobView(node!, second)).state === 'succeeded', { timeoutMs: 15_000, message: 'both delivered after recovery' });
    expect(await breaker()).toBe('closed');
    expect((await jobView(node, second)).spent).toBe(1);
    expect(back.received).toHaveLength(2);
  });

  it('refuses loopback targets unless private networks are allowed (at create, and again at connect time)', async () => {
    const hook = await receiver(() => 200);
    node = await startTestNode(config({ allowPrivateNetworks: false }));
    for (const url of [hook.url, `http://localhost:${hook.port}/hook`]) {
      const refused = await node.request('POST', '/v1/triggers', { on: 'order.*', action: { type: 'webhook', url, secret: SECRET } });
      expect(refused.status).toBe(422);
      expect(refused.body.type).toBe('https://drover.dev/problems/forbidden-target');
    }
    // Triggers stored before the create-time check (or by a node that allowed private networks) are refused when they connect.
    await storeTriggers(node, [hook.url, `http://localhost:${hook.port}/hook`]);
    const res = await node.request('POST', '/v1/events', { name: 'order.created', data: {} });
    const jobs = (await node.request('GET', `/v1/events/${res.body.id as string}`)).body.jobs as Array<{ id: string }>;
    expect(jobs).toHaveLength(2);
    for (const { id } of jobs) {
      await waitFor(async () => (await jobView(node!, id)).state === 'dead', { message: 'refused target dead' });
      const job = await jobView(node, id);
      expect(job).toMatchObject({ deadReason: 'non_retryable', spent: 1 });
      expect(job.lastError).toMatch(/loopback, private, link-local or metadata/);
    }
    expect(hook.received).toHaveLength(0);
  });

  it('lists triggers without secrets, deletes them, and records both in the audit trail', async () => {
    node = await startTestNode(config());
    const created = await node.request('POST', '/v1/triggers', { on: 'order.*', filter: { amount: { $gt: 100 } }, action: { type: 'webhook', url: 'http://127.0.0.1:9/x' } });
    expect(created.status).toBe(201);
    expect(created.body.secret).toMatch(/^whsec_/);
    const list = await node.request('GET', '/v1/triggers');
    expect(list.body.triggers).toHaveLength(1);
    expect(JSON.stringify(list.body)).not.toContain(created.body.secret as string);
    // The filter decides: a small order fans out to no webhook job.
    const small = await node.request('POST', '/v1/events', { name: 'order.created', data: { amount: 5 } });
    expect((await node.request('GET', `/v1/events/${small.body.id as string}`)).body.jobs).toHaveLength(0);

    expect((await node.request('POST', '/v1/triggers', { on: 'order.*', action: { type: 'webhook', url: 'ftp://x/y' } })).status).toBe(422);
    expect((await node.request('POST', '/v1/triggers', { on: 'order.*', action: { type: 'webhook', url: 'http://x/y', headers: { 'X-Drover-Signature': 'forged' } } })).status).toBe(422);

    const removed = await node.request('DELETE', `/v1/triggers/${created.body.id as string}`);
    expect(removed.status).toBe(200);
    expect((await node.request('DELETE', `/v1/triggers/${created.body.id as string}`)).status).toBe(404);
    expect((await node.request('GET', '/v1/triggers')).body.triggers).toHaveLength(0);
    const audit = (await node.request('GET', '/v1/audit')).body;
    const actions = (audit.records ?? audit.items ?? audit) as Array<{ action: string; target: string }>;
    expect(actions.filter((r) => r.target === `trigger:${created.body.id as string}`).map((r) => r.action).sort()).toEqual(['trigger.create', 'trigger.delete']);
  });

  it('keeps every trigger created or deleted at the same time (no request overwrites another\'s change)', async () => {
    node = await startTestNode(config());
    const created = await Promise.all(
      Array.from({ length: 20 }, (_, i) => node!.request('POST', '/v1/triggers', { on: `order.${i}`, action: { type: 'webhook', url: `http://127.0.0.1:9/${i}` } })),
    );
    for (const res of created) expect(res.status).toBe(201);
    const ids = created.map((res) => res.body.id as string);
    expect(((await node.request('GET', '/v1/triggers')).body.triggers as Array<{ id: string }>).map((t) => t.id).sort()).toEqual([...ids].sort());
    const removed = await Promise.all(ids.slice(0, 10).map((id) => node!.request('DELETE', `/v1/triggers/${id}`)));
    for (const res of removed) expect(res.status).toBe(200);
    expect(((await node.request('GET', '/v1/triggers')).body.triggers as Array<{ id: string }>).map((t) => t.id).sort()).toEqual(ids.slice(10).sort());
  });
});
