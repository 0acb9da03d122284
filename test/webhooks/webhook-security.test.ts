/**
 * Attacks on webhook triggers through the HTTP API, on both engines where the
 * store holds what matters:
 * - a `read` key (and an admin) reads triggers and the audit trail and finds
 *   no receiver credential (header values, URL query values, secrets);
 * - SSRF forms are refused at create and, when stored anyway, at delivery;
 * - a real receiver running the verification code from docs/webhooks.md
 *   accepts real deliveries and refuses a tampered delivery id, timestamp or body;
 * - rotation: both signatures while two secrets are active, the retired
 *   secret stops verifying.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DroverConfig } from '../../src/core/handler.js';
import { keyWith } from '../api/support.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';

const PG_URL = process.env.DROVER_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const admin = new pg.Pool({ connectionString: PG_URL, max: 2 });
admin.on('error', () => undefined);
const schemas: string[] = [];

type Verify = (secrets: string | string[], headers: IncomingHttpHeaders, rawBody: Buffer | string, toleranceSeconds?: number) => boolean;
let verifyDrover: Verify;
const snippetDir = mkdtempSync(join(tmpdir(), 'drover-verify-'));

beforeAll(async () => {
  // The receiver code is the block in docs/webhooks.md, run as written.
  const doc = readFileSync(new URL('../../docs/webhooks.md', import.meta.url), 'utf8');
  const section = doc.slice(doc.indexOf('## Verifying a delivery'));
  const start = section.indexOf('```js\n') + '```js\n'.length;
  const code = section.slice(start, section.indexOf('\n```', start));
  const file = join(snippetDir, 'verify.mjs');
  writeFileSync(file, code);
  verifyDrover = ((await import(pathToFileURL(file).href)) as { verifyDrover: Verify }).verifyDrover;
});

afterAll(async () => {
  for (const schema of schemas) await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
  await admin.end();
  rmSync(snippetDir, { recursive: true, force: true });
});

interface Delivery {
  headers: IncomingHttpHeaders;
  raw: Buffer;
  accepted: boolean;
}

let node: TestNode | undefined;
const servers: Server[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await node?.close();
  node = undefined;
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A receiver that verifies with the documented code and the secrets it holds now: 204 when verified, 401 otherwise. */
async function receiver(holds: { secrets: string[] }): Promise<{ url: string; port: number; deliveries: Delivery[] }> {
  const deliveries: Delivery[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const accepted = verifyDrover(holds.secrets, req.headers, raw);
      if (req.headers['x-test-replay'] === undefined) deliveries.push({ headers: req.headers, raw, accepted });
      res.statusCode = accepted ? 204 : 401;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}/hook`, port, deliveries };
}

/** Send a captured delivery again over HTTP, with some headers or the body changed; the receiver's status. */
function replay(port: number, delivery: Delivery, change: { headers?: Record<string, string>; body?: Buffer }): Promise<number> {
  return new Promise((resolve, reject) => {
    const body = change.body ?? delivery.raw;
    const headers = { ...delivery.headers, ...change.headers, 'content-length': String(body.length), 'x-test-replay': '1' };
    const req = httpRequest({ host: '127.0.0.1', port, path: '/hook', method: 'POST', headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const ENGINES = [
  ['sqlite', () => ({})],
  [
    'postgres',
    () => {
      const schema = `drover_wh_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
      schemas.push(schema);
      return { databaseUrl: PG_URL, postgres: { schema, poolMax: 4 } };
    },
  ],
] as const;

async function start(engine: (typeof ENGINES)[number][1], webhooks: DroverConfig['webhooks'] = {}): Promise<TestNode> {
  const dir = mkdtempSync(join(tmpdir(), 'drover-wh-'));
  dirs.push(dir);
  // The PostgreSQL engine has no file: keep the node's key and audit export in this test's directory.
  process.env.DROVER_DATA_DIR = dir;
  try {
    return await startTestNode(
      { handlers: [{ name: 'noop', on: 'never.sent', run: () => null }], rateLimit: { enabled: false }, webhooks: { allowPrivateNetworks: true, maxAttempts: 3, ...webhooks }, ...engine() },
      { dir },
    );
  } finally {
    delete process.env.DROVER_DATA_DIR;
  }
}

const SECRET_A = 'whsec_first_secret_aaaaaaaaaaaa';
const SECRET_B = 'whsec_second_secret_bbbbbbbbbbb';
const HEADER_SECRET = 'Bearer hdr-credential-7d1e94';
const QUERY_SECRET = 'qry-credential-55c0a1';

/** Send an event and wait for its webhook job to end; the job. */
async function deliver(n: TestNode): Promise<{ id: string; state: string; deadReason: string | null }> {
  const sent = await n.request('POST', '/v1/events', { name: 'order.created', data: { amount: 7 } });
  expect(sent.status).toBe(202);
  const jobs = (await n.request('GET', `/v1/events/${sent.body.id as string}`)).body.jobs as Array<{ id: string; handler: string }>;
  const id = jobs.find((j) => j.handler === 'drover.webhook')!.id;
  return waitFor(async () => {
    const job = (await n.request('GET', `/v1/jobs/${id}`)).body as { id: string; state: string; deadReason: string | null };
    return job.state === 'succeeded' || job.state === 'dead' ? job : null;
  }, { timeoutMs: 10_000, message: `webhook job ${id} finished` });
}

describe.each(ENGINES)('webhook security (%s)', (_name, engine) => {
  it('a read key, and an admin, find no receiver credential in triggers, answers, the audit trail or the logs', async () => {
    node = await start(engine);
    const readKey = await keyWith(node, ['read']);
    const created = await node.request('POST', '/v1/triggers', {
      on: 'order.*',
      action: { type: 'webhook', url: `http://127.0.0.1:9/hook?token=${QUERY_SECRET}&team=x`, secret: SECRET_A, headers: { Authorization: HEADER_SECRET, 'X-Api-Key': 'key-credential-99' } },
    });
    expect(created.status).toBe(201);
    expect(created.body.secret).toBe(SECRET_A); // the one answer that shows it
    const id = created.body.id as string;
    expect(created.body.action).toMatchObject({
      url: 'http://127.0.0.1:9/hook?token=[redacted]&team=[redacted]',
      headers: { Authorization: '[redacted]', 'X-Api-Key': '[redacted]' },
      secrets: [{ id: expect.stringMatching(/^whs_/) }],
    });
    const rotated = await node.request('POST', `/v1/triggers/${id}/rotate-secret`, { secret: SECRET_B });
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).toBe(SECRET_B);
    expect(JSON.stringify(rotated.body)).not.toContain(SECRET_A);
    expect((await node.request('POST', `/v1/triggers/${id}/retire-secret`, {})).status).toBe(200);

    const credentials = [SECRET_A, SECRET_B, HEADER_SECRET, 'hdr-credential', QUERY_SECRET, 'key-credential-99'];
    const clean = (what: string, value: unknown) => {
      const text = JSON.stringify(value);
      for (const secret of credentials) expect(text, `${what} shows ${secret}`).not.toContain(secret);
    };

    // A read key may not list triggers at all; whether it may read the audit trail is the audit scope's call, but what it reads is clean.
    const asRead = async (url: string) => node!.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${readKey}` } });
    expect((await asRead('/v1/triggers')).statusCode).toBe(403);
    const readAudit = await asRead('/v1/audit');
    expect([200, 403]).toContain(readAudit.statusCode);
    clean('GET /v1/audit as read', readAudit.body);

    const list = await node.request('GET', '/v1/triggers');
    clean('GET /v1/triggers as admin', list.body);
    expect(list.body.triggers[0].action.headers).toEqual({ Authorization: '[redacted]', 'X-Api-Key': '[redacted]' });
    const audit = await node.request('GET', '/v1/audit');
    clean('GET /v1/audit as admin', audit.body);
    const actions = (audit.body.records as Array<{ action: string; target: string; after: any }>).filter((r) => r.target === `trigger:${id}`);
    expect(actions.map((r) => r.action).sort()).toEqual(['trigger.create', 'trigger.retire-secret', 'trigger.rotate-secret']);
    expect(actions.find((r) => r.action === 'trigger.create')!.after.action.headers).toEqual({ Authorization: '[redacted]', 'X-Api-Key': '[redacted]' });

    const removed = await node.request('DELETE', `/v1/triggers/${id}`);
    expect(removed.status).toBe(200);
    clean('DELETE /v1/triggers/:id', removed.body);
    clean('GET /v1/audit after delete', (await node.request('GET', '/v1/audit')).body);
    clean('the node\'s log', node.logLines);
  });

  it('a receiver that echoes the request in a refusal does not put the credentials into the job a read key sees', async () => {
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.statusCode = 403;
        res.end(`denied: authorization=${String(req.headers.authorization)} url=${String(req.url)}`);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    const port = (server.address() as AddressInfo).port;
    node = await start(engine);
    const readKey = await keyWith(node, ['read']);
    await node.request('POST', '/v1/triggers', { on: 'order.*', action: { type: 'webhook', url: `http://127.0.0.1:${port}/in?token=${QUERY_SECRET}`, secret: SECRET_A, headers: { Authorization: HEADER_SECRET } } });
    const job = await deliver(node);
    expect(job.state).toBe('dead');
    const seen = await node.app.inject({ method: 'GET', url: `/v1/jobs/${job.id}`, headers: { authorization: `Bearer ${readKey}` } });
    expect(seen.statusCode).toBe(200);
    expect(seen.body).toContain('denied: authorization=[redacted] url=/in?token=[redacted]');
    for (const secret of [HEADER_SECRET, QUERY_SECRET]) expect(seen.body).not.toContain(secret);
  });

  it('a receiver running the documented check verifies id, timestamp and body; a tampered delivery id fails', async () => {
    const holds = { secrets: [SECRET_A] };
    const hook = await receiver(holds);
    node = await start(engine);
    expect((await node.request('POST', '/v1/triggers', { on: 'order.*', action: { type: 'webhook', url: hook.url, secret: SECRET_A } })).status).toBe(201);
    const job = await deliver(node);
    expect(job.state).toBe('succeeded');
    const d = hook.deliveries[0]!;
    expect(d.accepted).toBe(true);
    expect(d.headers['x-drover-delivery']).toBe(job.id);
    expect(d.headers['x-drover-signature']).toMatch(/^v1=[0-9a-f]{64}$/);

    expect(await replay(hook.port, d, {})).toBe(204); // the request as sent still verifies (the receiver's dedupe catches the replay)
    expect(await replay(hook.port, d, { headers: { 'x-drover-delivery': `${job.id}0` } })).toBe(401);
    expect(await replay(hook.port, d, { headers: { 'x-drover-delivery': 'another-id' } })).toBe(401);
    expect(await replay(hook.port, d, { headers: { 'x-drover-timestamp': String(Number(d.headers['x-drover-timestamp']) + 1) } })).toBe(401);
    expect(await replay(hook.port, d, { body: Buffer.from(d.raw.toString().replace('7', '8')) })).toBe(401);
    holds.secrets = ['whsec_some_other_secret_000000'];
    expect(await replay(hook.port, d, {})).toBe(401);
  });

  it('rotation: both signatures while two secrets are active; the retired secret stops verifying', async () => {
    const oldOnly = { secrets: [SECRET_A] };
    const hook = await receiver(oldOnly);
    node = await start(engine);
    const id = (await node.request('POST', '/v1/triggers', { on: 'order.*', action: { type: 'webhook', url: hook.url, secret: SECRET_A } })).body.id as string;

    // No body at all is the same as {}.
    const rotated = await node.request('POST', `/v1/triggers/${id}/rotate-secret`);
    expect(rotated.status).toBe(200);
    const generated = rotated.body.secret as string;
    expect(generated).toMatch(/^whsec_/);
    expect(rotated.body.action.secrets).toHaveLength(2);
    const [oldId, newId] = (rotated.body.action.secrets as Array<{ id: string }>).map((s) => s.id);
    expect(rotated.body.secretId).toBe(newId);
    const third = await node.request('POST', `/v1/triggers/${id}/rotate-secret`, {});
    expect(third.status).toBe(409);
    expect(third.body.type).toBe('https://drover.dev/problems/invalid-state');

    // While both are active, a receiver holding either secret verifies the same delivery.
    const during = await deliver(node);
    expect(during.state).toBe('succeeded');
    const d = hook.deliveries.at(-1)!;
    expect(String(d.headers['x-drover-signature'])).toMatch(/^v1=[0-9a-f]{64} v1=[0-9a-f]{64}$/);
    expect(verifyDrover([SECRET_A], d.headers, d.raw)).toBe(true);
    expect(verifyDrover([generated], d.headers, d.raw)).toBe(true);

    expect((await node.request('POST', `/v1/triggers/${id}/retire-secret`, { secretId: 'whs_nope' })).status).toBe(404);
    const retired = await node.request('POST', `/v1/triggers/${id}/retire-secret`);
    expect(retired.status).toBe(200);
    expect(retired.body.retiredSecretId).toBe(oldId);
    expect(retired.body.action.secrets.map((s: { id: string }) => s.id)).toEqual([newId]);
    const last = await node.request('POST', `/v1/triggers/${id}/retire-secret`, {});
    expect(last.status).toBe(409);

    // The old secret no longer verifies: the receiver still holding only it refuses (401, dead as non-retryable).
    const after = await deliver(node);
    expect(after).toMatchObject({ state: 'dead', deadReason: 'non_retryable' });
    const refused = hook.deliveries.at(-1)!;
    expect(refused.accepted).toBe(false);
    expect(String(refused.headers['x-drover-signature'])).toMatch(/^v1=[0-9a-f]{64}$/);
    expect(verifyDrover([generated], refused.headers, refused.raw)).toBe(true);
    // A receiver that moved to the new secret accepts the next one.
    oldOnly.secrets = [generated];
    expect((await deliver(node)).state).toBe('succeeded');

    expect((await node.request('POST', '/v1/triggers/trg_missing/rotate-secret', {})).status).toBe(404);
    const audit = (await node.request('GET', '/v1/audit')).body.records as Array<{ action: string; target: string }>;
    expect(audit.filter((r) => r.target === `trigger:${id}`).map((r) => r.action).sort()).toEqual(['trigger.create', 'trigger.retire-secret', 'trigger.rotate-secret']);
  });
});

describe.each(ENGINES)('triggers stored before rotation existed (%s)', (_name, engine) => {
  it('sign with their single secret, rotate, and keep no trace of it once retired', async () => {
    const holds = { secrets: [SECRET_A] };
    const hook = await receiver(holds);
    node = await start(engine);
    const legacy = [{ id: 'trg_legacy', on: 'order.*', filter: null, action: { type: 'webhook', url: hook.url, secret: SECRET_A, timeoutMs: null, headers: {} }, createdAt: 0 }];
    await node.store.updateMeta('webhook_triggers', () => JSON.stringify(legacy));
    await node.runtime.triggers.load();
    expect((await deliver(node)).state).toBe('succeeded');
    expect(hook.deliveries[0]!.accepted).toBe(true);

    const rotated = await node.request('POST', '/v1/triggers/trg_legacy/rotate-secret', { secret: SECRET_B });
    expect(rotated.body.action.secrets.map((s: { id: string }) => s.id)).toEqual(['whs_initial', rotated.body.secretId]);
    expect((await node.request('POST', '/v1/triggers/trg_legacy/retire-secret', { secretId: 'whs_initial' })).status).toBe(200);
    expect(await node.store.getMeta('webhook_triggers')).not.toContain(SECRET_A);
    holds.secrets = [SECRET_B];
    expect((await deliver(node)).state).toBe('succeeded');
  });
});

describe('SSRF through the API', () => {
  const FORMS = (port: number) => [
    `http://127.0.0.1:${port}/hook`,
    `http://localhost:${port}/hook`, // a DNS answer that is loopback
    `http://2130706433:${port}/hook`, // decimal
    `http://0x7f.1:${port}/hook`, // hex, short
    `http://0177.0.0.1:${port}/hook`, // octal
    `http://[::ffff:127.0.0.1]:${port}/hook`, // IPv4-mapped
    `http://[::7f00:1]:${port}/hook`, // IPv4-compatible
    `http://[64:ff9b::7f00:1]:${port}/hook`, // NAT64
    `http://[64:ff9b:1::a9fe:a9fe]:${port}/hook`, // local-use NAT64
    `http://[2002:7f00:1::1]:${port}/hook`, // 6to4
    `http://[2001:0:4136:e378:8000:63bf:80ff:fffe]:${port}/hook`, // Teredo
    `http://[::ffff:a9fe:a9fe]/latest/meta-data`, // metadata, mapped
  ];

  it('refuses every form at create (422 forbidden-target, nothing stored) and at delivery when stored anyway', async () => {
    const hook = await receiver({ secrets: [SECRET_A] });
    node = await start(ENGINES[0][1], { allowPrivateNetworks: false, maxAttempts: 1 });
    for (const url of FORMS(hook.port)) {
      const res = await node.request('POST', '/v1/triggers', { on: 'order.*', action: { type: 'webhook', url, secret: SECRET_A } });
      expect(res.status, url).toBe(422);
      expect(res.body.type).toBe('https://drover.dev/problems/forbidden-target');
    }
    expect((await node.request('GET', '/v1/triggers')).body.triggers).toEqual([]);

    // Stored past the create check (an older node, or one that allowed private networks): refused when it connects.
    const triggers = FORMS(hook.port).map((url, i) => ({ id: `trg_ssrf_${i}`, on: 'order.*', filter: null, action: { type: 'webhook', url, secrets: [{ id: 'whs_1', secret: SECRET_A, createdAt: 0 }], timeoutMs: null, headers: {} }, createdAt: 0 }));
    await node.store.updateMeta('webhook_triggers', () => JSON.stringify(triggers));
    await node.runtime.triggers.load();
    const sent = await node.request('POST', '/v1/events', { name: 'order.created', data: {} });
    const jobs = (await node.request('GET', `/v1/events/${sent.body.id as string}`)).body.jobs as Array<{ id: string }>;
    expect(jobs).toHaveLength(triggers.length);
    for (const { id } of jobs) {
      const job = await waitFor(async () => {
        const j = (await node!.request('GET', `/v1/jobs/${id}`)).body as { state: string; deadReason: string | null; lastError: string | null };
        return j.state === 'dead' ? j : null;
      }, { message: `job ${id} refused` });
      expect(job.deadReason).toBe('non_retryable');
      expect(job.lastError).toMatch(/loopback, private, link-local or metadata/);
    }
    expect(hook.deliveries).toHaveLength(0);
  });
});
