/**
 * Least privilege for work keys, attacked through HTTP on both engines
 * (issue 15, findings 1 and 9): a work key leases only handlers in its scope
 * (by default `remote: true` ones, never `drover.*`), acts only on leases it
 * took itself, and every lease token is independently random.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DroverConfig } from '../../src/core/handler.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';
import { drover } from '../ops/cli.js';
import { DroverApiError, runWorker } from '../../src/sdk/worker.js';
import { injectAs, listen, type Answer } from './support.js';

const PG_URL = process.env.DROVER_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const pgAdmin = new pg.Pool({ connectionString: PG_URL, max: 2 });
pgAdmin.on('error', () => undefined);
const schemas: string[] = [];
const PROBLEMS = 'https://drover.dev/problems/';

afterAll(async () => {
  for (const schema of schemas) await pgAdmin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await pgAdmin.end();
});

/** Closed during a test: the node's own pool holds the first local job while the second waits queued. Opened (and re-armed) after each test. */
function closedGate(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
let gate = closedGate();
function openGate(): void {
  gate.resolve();
  gate = closedGate();
}

function config(): Omit<DroverConfig, 'databaseUrl'> {
  // Each run lasts at least 60 ms: past the dispatcher's FAST_JOB_MS (50), so the node never
  // leases these handlers' jobs ahead into its buffer, and a second job stays queued for the test.
  const held = async () => {
    const started = Date.now();
    await gate.promise;
    const left = 60 - (Date.now() - started);
    if (left > 0) await new Promise((resolve) => setTimeout(resolve, left));
  };
  return {
    handlers: [
      { name: 'resize', remote: true },
      { name: 'billing.invoice', remote: true },
      { name: 'billing.refund', remote: true },
      { name: 'send-email', concurrency: 1, run: held },
      { name: 'local', concurrency: 1, run: held },
    ],
    webhooks: { allowPrivateNetworks: true },
    rateLimit: { enabled: false },
  } as Omit<DroverConfig, 'databaseUrl'>;
}

const engines = [
  { engine: 'sqlite', extra: (): Partial<DroverConfig> => ({}) },
  {
    engine: 'postgres',
    extra: (): Partial<DroverConfig> => {
      const schema = `drover_scope_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
      schemas.push(schema);
      return { databaseUrl: PG_URL, postgres: { schema, poolMax: 4 } } as Partial<DroverConfig>;
    },
  },
];

describe.each(engines)('work key scope ($engine)', ({ engine, extra }) => {
  let node: TestNode;

  beforeAll(async () => {
    if (engine === 'postgres') {
      try {
        await pgAdmin.query('SELECT 1');
      } catch (error) {
        throw new Error(`PostgreSQL is not reachable at ${PG_URL} (${(error as Error).message}); start it or set DROVER_TEST_PG_URL`);
      }
    }
    node = await startTestNode({ ...config(), ...extra() });
  });
  afterEach(() => openGate());
  afterAll(async () => {
    openGate();
    await node?.close();
  });

  const admin = (method: 'GET' | 'POST', url: string, body?: unknown) => node.request(method, url, body);
  const job = async (id: string) => (await admin('GET', `/v1/jobs/${id}`)).body;
  const as = (key: string, url: string, body: unknown): Promise<Answer> => injectAs(node, key, 'POST', url, body);

  async function createKey(body: Record<string, unknown>): Promise<{ id: string; secret: string; body: any }> {
    const res = await admin('POST', '/v1/keys', { name: `k-${randomUUID().slice(0, 8)}`, scopes: ['work'], ...body });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return { id: res.body.id, secret: res.body.secret, body: res.body };
  }

  async function enqueue(handler: string): Promise<string> {
    const res = await admin('POST', '/v1/jobs', { handler, payload: { secret: 'card-4242' } });
    expect(res.status).toBe(202);
    return res.body.id as string;
  }

  /** A job of a local handler left queued: the node's own pool (concurrency 1) is busy with a gated one. */
  async function queuedLocalJob(handler: 'local' | 'send-email'): Promise<string> {
    const busy = await enqueue(handler);
    await waitFor(async () => (await job(busy)).state === 'running', { timeoutMs: 10_000, message: `the node runs the first ${handler} job` });
    return enqueue(handler);
  }

  function expectRefused(res: Answer, type: string): void {
    expect(res.status, JSON.stringify(res.body)).toBe(403);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body.type).toBe(PROBLEMS + type);
  }

  it('a default work key cannot lease a non-remote handler or drover.webhook: 403, logged with the key id, the job untouched', async () => {
    const key = await createKey({});
    expect(key.body.handlers).toBeNull();
    const waiting = await queuedLocalJob('local');

    const local = await as(key.secret, '/v1/workers/lease', { handlers: ['local'], max: 10 });
    expectRefused(local, 'handler-not-allowed');
    expect(local.body.handlers).toEqual(['local']);
    expect(await job(waiting)).toMatchObject({ state: 'queued', attemptCount: 0 });

    // A webhook delivery waiting in the store (its handler paused, so the node does not deliver it).
    expect((await admin('POST', '/v1/handlers/drover.webhook/pause')).status).toBe(200);
    const trigger = await admin('POST', '/v1/triggers', { on: 'order.paid', action: { type: 'webhook', url: 'http://127.0.0.1:9/hook' } });
    expect(trigger.status, JSON.stringify(trigger.body)).toBe(201);
    const sent = await admin('POST', '/v1/events', { name: 'order.paid', data: { order: 7 } });
    const delivery = (await admin('GET', `/v1/events/${encodeURIComponent(sent.body.id)}`)).body.jobs[0].id as string;
    expect(await job(delivery)).toMatchObject({ handler: 'drover.webhook', state: 'queued', attemptCount: 0 });

    for (const handlers of [['drover.webhook'], ['resize', 'drover.webhook'], ['local', 'resize']]) {
      const res = await as(key.secret, '/v1/workers/lease', { handlers, max: 10 });
      expectRefused(res, 'handler-not-allowed');
    }
    expect(await job(delivery)).toMatchObject({ state: 'queued', attemptCount: 0 });
    expect(await job(waiting)).toMatchObject({ state: 'queued', attemptCount: 0 });

    const warnings = node.logLines.filter((l) => l.msg === 'work key refused: handlers outside its scope');
    expect(warnings.length).toBeGreaterThanOrEqual(4);
    expect(warnings[0]).toMatchObject({ level: 'warn', key_id: key.id, op: 'lease', handlers: ['local'] });
    expect(JSON.stringify(node.logLines)).not.toContain(key.secret);

    // The admin key keeps full power: the same job was there to take.
    const taken = await admin('POST', '/v1/workers/lease', { handlers: ['local'], max: 1 });
    expect(taken.body.jobs.map((j: { id: string }) => j.id)).toEqual([waiting]);
    expect((await admin('POST', '/v1/workers/complete', { jobId: waiting, token: taken.body.jobs[0].leaseToken })).status).toBe(200);
    expect((await admin('POST', '/v1/handlers/drover.webhook/resume')).status).toBe(200);
  });

  it('a default work key leases remote handlers; an unknown name lists only what the key may lease', async () => {
    const key = await createKey({});
    const id = await enqueue('resize');
    const res = await as(key.secret, '/v1/workers/lease', { handlers: ['resize'], max: 1 });
    expect(res.status).toBe(200);
    expect(res.body.jobs.map((j: { id: string }) => j.id)).toEqual([id]);
    expect((await as(key.secret, '/v1/workers/complete', { jobId: id, token: res.body.jobs[0].leaseToken, result: 1 })).status).toBe(200);

    const unknown = await as(key.secret, '/v1/workers/lease', { handlers: ['nope'] });
    expect(unknown.status).toBe(422);
    expect(unknown.body.detail).toContain('resize');
    expect(unknown.body.detail).not.toContain('drover.webhook');
    expect(unknown.body.detail).not.toContain('local');
    expect(unknown.body.detail).not.toContain('send-email');
  });

  it('a key scoped with patterns leases exactly the handlers they match, remote or not, and never drover.*', async () => {
    const key = await createKey({ handlers: ['billing.*', 'send-email', '**'] });
    expect(key.body.handlers).toEqual(['billing.*', 'send-email', '**']);
    const narrow = await createKey({ handlers: ['billing.*', 'send-email'] });

    const invoice = await enqueue('billing.invoice');
    const ok = await as(narrow.secret, '/v1/workers/lease', { handlers: ['billing.invoice', 'billing.refund'], max: 5 });
    expect(ok.status).toBe(200);
    expect(ok.body.jobs.map((j: { id: string }) => j.id)).toEqual([invoice]);

    // A local handler it names: shared with the node's own pool.
    const email = await queuedLocalJob('send-email');
    const mail = await as(narrow.secret, '/v1/workers/lease', { handlers: ['send-email'], max: 1 });
    expect(mail.body.jobs.map((j: { id: string }) => j.id)).toEqual([email]);

    expectRefused(await as(narrow.secret, '/v1/workers/lease', { handlers: ['resize'] }), 'handler-not-allowed');
    expectRefused(await as(narrow.secret, '/v1/workers/lease', { handlers: ['local'] }), 'handler-not-allowed');
    // `**` matches every name, yet built-in handlers stay out of reach.
    expectRefused(await as(key.secret, '/v1/workers/lease', { handlers: ['drover.webhook'] }), 'handler-not-allowed');
    expect((await as(key.secret, '/v1/workers/lease', { handlers: ['resize', 'local'] })).status).toBe(200);

    const listed = (await admin('GET', '/v1/keys')).body.keys.find((k: { id: string }) => k.id === narrow.id);
    expect(listed).toMatchObject({ scopes: ['work'], handlers: ['billing.*', 'send-email'] });
    const audit = (await admin('GET', '/v1/audit?limit=100')).body.records.find((r: { target: string }) => r.target === `key:${narrow.id}`);
    expect(audit).toMatchObject({ action: 'key.create', after: { scopes: ['work'], handlers: ['billing.*', 'send-email'] } });
  });

  it('refuses handler patterns that are malformed, name built-in handlers, or sit on a key without work', async () => {
    for (const [body, needle] of [
      [{ handlers: ['drover.webhook'] }, 'built-in'],
      [{ handlers: ['drover.**'] }, 'built-in'],
      [{ handlers: ['billing*'] }, 'whole segment'],
      [{ handlers: [] }, ''],
      [{ scopes: ['read'], handlers: ['billing.*'] }, 'work scope'],
      [{ scopes: ['admin', 'work'], handlers: ['billing.*'] }, 'admin key works on every handler'],
    ] as const) {
      const res = await admin('POST', '/v1/keys', { name: 'bad', scopes: ['work'], ...body });
      expect(res.status, JSON.stringify(body)).toBe(422);
      expect(res.body.type).toBe(`${PROBLEMS}validation`);
      expect(res.body.detail).toContain(needle);
    }
  });

  it('heartbeat, complete, fail and release of a job outside the key\'s scope are refused and change nothing', async () => {
    const key = await createKey({});
    const id = await queuedLocalJob('local');
    const taken = await admin('POST', '/v1/workers/lease', { handlers: ['local'], max: 1 });
    const token = taken.body.jobs[0].leaseToken as string;
    for (const [op, extra] of [['heartbeat', {}], ['complete', { result: 'forged' }], ['fail', { error: 'x' }], ['release', {}]] as const) {
      expectRefused(await as(key.secret, `/v1/workers/${op}`, { jobId: id, token, ...extra }), 'handler-not-allowed');
    }
    expect(await job(id)).toMatchObject({ state: 'running', attemptCount: 1, result: null });
    expect(node.logLines.some((l) => l.msg === 'work key refused: job of a handler outside its scope' && l.key_id === key.id && l.job_id === id)).toBe(true);
    expect((await admin('POST', '/v1/workers/complete', { jobId: id, token })).status).toBe(200);
  });

  it('a lease token is bound to the key that leased: another work key gets 403 lease-key-mismatch, the holder keeps its lease', async () => {
    const a = await createKey({});
    const b = await createKey({});
    const id = await enqueue('resize');
    const leased = await as(a.secret, '/v1/workers/lease', { handlers: ['resize'], max: 1 });
    const token = leased.body.jobs[0].leaseToken as string;
    for (const [op, extra] of [['heartbeat', { leaseMs: 600_000 }], ['complete', { result: 'forged' }], ['fail', { error: 'x', nonRetryable: true }], ['release', {}]] as const) {
      expectRefused(await as(b.secret, `/v1/workers/${op}`, { jobId: id, token, ...extra }), 'lease-key-mismatch');
    }
    expect(await job(id)).toMatchObject({ state: 'running', attemptCount: 1, result: null, lastError: null });
    expect(node.logLines.some((l) => l.msg === 'work key refused: the lease was taken with another key' && l.key_id === b.id && l.lease_key_id === a.id)).toBe(true);

    // A wrong token from the other key is still just stale: nothing about the lease leaks.
    expect((await as(b.secret, '/v1/workers/heartbeat', { jobId: id, token: randomUUID() })).status).toBe(409);
    // Admin keys keep full power; the holder finishes normally.
    expect((await admin('POST', '/v1/workers/heartbeat', { jobId: id, token, leaseMs: 60_000 })).status).toBe(200);
    const done = await as(a.secret, '/v1/workers/complete', { jobId: id, token, result: { ok: true } });
    expect(done.status).toBe(200);
    expect(await job(id)).toMatchObject({ state: 'succeeded', result: { ok: true } });
  });

  it('the SDK worker reports a lease outside its key\'s scope to onError and takes nothing', async () => {
    const key = await createKey({});
    const waiting = await queuedLocalJob('local');
    const errors: Error[] = [];
    const worker = runWorker({ url: await listen(node), key: key.secret, handlers: { local: async () => 'forged' }, waitMs: 0, onError: (e) => void errors.push(e) });
    try {
      await waitFor(() => errors.length > 0, { timeoutMs: 10_000, message: 'the worker reported the refused lease' });
      expect(errors[0]).toBeInstanceOf(DroverApiError);
      expect((errors[0] as DroverApiError).code).toBe('handler-not-allowed');
      expect(await job(waiting)).toMatchObject({ state: 'queued', attemptCount: 0 });
    } finally {
      await worker.stop(1_000);
    }
  });

  it('gives each job of one lease call an independent token (no shared nonce, nothing derived from the job)', async () => {
    const key = await createKey({});
    const ids = [];
    for (let i = 0; i < 12; i++) ids.push(await enqueue('billing.refund'));
    const res = await as(key.secret, '/v1/workers/lease', { handlers: ['billing.refund'], max: 12 });
    const jobs = res.body.jobs as Array<{ id: string; leaseToken: string }>;
    expect(jobs).toHaveLength(12);
    const tokens = jobs.map((j) => j.leaseToken);
    expect(new Set(tokens.map((t) => t.slice(0, 8))).size).toBe(12);
    const parts = tokens.flatMap((t) => t.split(/[.:_]/));
    expect(new Set(parts).size).toBe(parts.length);
    for (const j of jobs) {
      expect(j.leaseToken.endsWith(`.${j.id}`)).toBe(false);
      // Knowing one token and the other job ids gets an attacker nothing: the old `<nonce>.<id>` guess is stale.
      const other = jobs.find((o) => o.id !== j.id)!;
      const guess = `${other.leaseToken.split('.')[0]}.${j.id}`;
      expect((await as(key.secret, '/v1/workers/heartbeat', { jobId: j.id, token: guess })).status).toBe(409);
    }
    for (const j of jobs) expect((await as(key.secret, '/v1/workers/complete', { jobId: j.id, token: j.leaseToken })).status).toBe(200);
  });
});

describe('drover keys create --handlers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'drover-keys-scope-'));
  const env = { DROVER_DATABASE_URL: join(dir, 'drover.db') };
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('creates a scoped work key, lists its handlers, and refuses drover.* and keys without work', { timeout: 60_000 }, async () => {
    const created = await drover(['keys', 'create', '--name', 'billing-workers', '--scopes', 'work', '--handlers', 'billing.*, send-email', '--json'], env);
    expect(created.code, created.stderr).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ scopes: ['work'], handlers: ['billing.*', 'send-email'], secret: expect.stringMatching(/^drv_/) });
    const plain = await drover(['keys', 'create', '--name', 'resize-workers', '--scopes', 'work'], env);
    expect(plain.stdout).toMatch(/^key_\w+ work handlers=remote\n/);

    const list = await drover(['keys', 'list'], env);
    const rows = list.stdout.trim().split('\n').map((l) => l.split('\t'));
    expect(rows.find((r) => r[1] === 'billing-workers')).toEqual([expect.stringMatching(/^key_/), 'billing-workers', 'work', 'active', expect.any(String), 'billing.*,send-email']);
    expect(rows.find((r) => r[1] === 'resize-workers')?.[5]).toBe('remote');

    const builtIn = await drover(['keys', 'create', '--name', 'x', '--scopes', 'work', '--handlers', 'drover.webhook'], env);
    expect(builtIn.code).not.toBe(0);
    expect(builtIn.stderr).toContain('built-in');
    const noWork = await drover(['keys', 'create', '--name', 'x', '--scopes', 'read', '--handlers', 'billing.*'], env);
    expect(noWork.code).not.toBe(0);
    expect(noWork.stderr).toContain('--scopes work');
  });
});
