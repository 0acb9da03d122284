/**
 * The auth matrix: every route × every kind of caller (no key, unknown key,
 * and a key of each scope) answers exactly 401, 403 or 2xx as the route
 * table says. The table, the server, the OpenAPI document and docs/api.md
 * must agree.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROUTES, type RouteName } from '../../src/api/routes/scopes.js';
import type { RouteScope } from '../../src/api/auth.js';
import type { ApiScope } from '../../src/core/types.js';
import { ADMIN_KEY, startTestNode, type TestNode } from '../helpers/node.js';
import { injectAs, keyWith } from './support.js';

let node: TestNode;
const keys: Record<string, string | null> = { none: null, wrong: 'drv_this_key_was_never_issued_000000' };
const SCOPES: ApiScope[] = ['admin', 'produce', 'work', 'read', 'resume'];

beforeAll(async () => {
  node = await startTestNode({
    handlers: [
      { name: 'h', on: 'a.b', run: async () => undefined },
      { name: 'ctl', run: async () => undefined },
      { name: 'r', remote: true },
      { name: 'r2', remote: true },
      { name: 'appr', remote: true },
    ],
    queues: { ctlq: {} },
    rateLimit: { enabled: false },
    // The "wrong" caller fails authentication on every route from one address; test/api/auth-failures.test.ts covers the limit.
    auth: { maxFailures: 100_000 },
  });
  for (const scope of SCOPES) keys[scope] = scope === 'admin' ? ADMIN_KEY : await keyWith(node, [scope]);
});
afterAll(async () => node?.close());

interface Call {
  url: string;
  body?: unknown;
}

const admin = (method: 'GET' | 'POST', url: string, body?: unknown) => node.request(method, url, body);

async function delayedJob(handler = 'r'): Promise<string> {
  const res = await admin('POST', '/v1/jobs', { handler, delayMs: 3_600_000 });
  return res.body.id as string;
}

/**
 * A leased job of the remote handler r2, for the fenced worker routes. Leased
 * with the caller's key when it may lease (only the key that leased may act on
 * a lease), else with the admin key (the caller is refused on scope anyway).
 */
async function leased(caller: string): Promise<{ jobId: string; token: string }> {
  await admin('POST', '/v1/jobs', { handler: 'r2' });
  const as = caller === 'work' ? keys.work! : ADMIN_KEY;
  const res = await injectAs(node, as, 'POST', '/v1/workers/lease', { handlers: ['r2'], max: 1 });
  const job = res.body.jobs[0];
  if (!job) throw new Error(`nothing leased: ${JSON.stringify(res.body)}`);
  return { jobId: job.id, token: job.leaseToken };
}

/** A pending interrupt: a job of the remote handler `appr` leased and suspended as a remote worker would. */
let interruptPriority = 0;
async function pendingInterrupt(): Promise<string> {
  await admin('POST', '/v1/jobs', { handler: 'appr', priority: ++interruptPriority });
  const [job] = await node.store.lease({ workerId: 'matrix', handlers: [{ name: 'appr', max: 1 }], limit: 1, leaseMs: 60_000 });
  const now = Date.now();
  const result = await node.store.suspend(job!.id, job!.leaseToken, { step: 'ask', seq: 0, kind: 'interrupt', startedAt: now, wakeAt: now + 3_600_000, prompt: 'ok?' });
  if (!result.ok || !result.suspended) throw new Error(`no interrupt: ${JSON.stringify(result)}`);
  return result.wait.id;
}

/**
 * For each route, a request that succeeds when the caller may make it (fresh state per call).
 * A route without one (added to the table elsewhere) is still walked: refused callers must get
 * exactly 401/403, allowed ones anything but.
 */
const fixtures: Partial<Record<RouteName, (caller: string) => Promise<Call>>> = {
  'GET /health/live': async () => ({ url: '/health/live' }),
  'GET /health/ready': async () => ({ url: '/health/ready' }),
  'GET /v1/openapi.json': async () => ({ url: '/v1/openapi.json' }),
  'POST /v1/events': async () => ({ url: '/v1/events', body: { name: 'a.b', data: { n: 1 } } }),
  'POST /v1/jobs': async () => ({ url: '/v1/jobs', body: { handler: 'r', delayMs: 3_600_000 } }),
  'GET /v1/jobs': async () => ({ url: '/v1/jobs?limit=5' }),
  'GET /v1/jobs/:id': async () => ({ url: `/v1/jobs/${await delayedJob()}` }),
  'GET /v1/events/:id': async () => {
    const res = await admin('POST', '/v1/events', { name: 'no.subscribers' });
    return { url: `/v1/events/${encodeURIComponent(res.body.id)}` };
  },
  'GET /v1/stream': async () => ({ url: '/v1/stream?handler=h' }),
  'POST /v1/jobs/:id/cancel': async () => ({ url: `/v1/jobs/${await delayedJob()}/cancel` }),
  'POST /v1/jobs/:id/retry': async () => {
    const id = await delayedJob();
    await admin('POST', `/v1/jobs/${id}/cancel`);
    return { url: `/v1/jobs/${id}/retry` };
  },
  'GET /v1/status': async () => ({ url: '/v1/status' }),
  'GET /v1/handlers': async () => ({ url: '/v1/handlers' }),
  'GET /v1/queues': async () => ({ url: '/v1/queues' }),
  'POST /v1/handlers/:name/pause': async () => ({ url: '/v1/handlers/ctl/pause' }),
  'POST /v1/handlers/:name/resume': async () => ({ url: '/v1/handlers/ctl/resume' }),
  'POST /v1/handlers/:name/reset': async () => ({ url: '/v1/handlers/ctl/reset' }),
  'POST /v1/queues/:name/pause': async () => ({ url: '/v1/queues/ctlq/pause' }),
  'POST /v1/queues/:name/resume': async () => ({ url: '/v1/queues/ctlq/resume' }),
  'POST /v1/workers/lease': async () => ({ url: '/v1/workers/lease', body: { handlers: ['r'], max: 1, waitMs: 0 } }),
  'POST /v1/workers/heartbeat': async (caller) => ({ url: '/v1/workers/heartbeat', body: { ...(await leased(caller)), leaseMs: 60_000 } }),
  'POST /v1/workers/complete': async (caller) => ({ url: '/v1/workers/complete', body: { ...(await leased(caller)), result: { ok: true } } }),
  'POST /v1/workers/fail': async (caller) => ({ url: '/v1/workers/fail', body: { ...(await leased(caller)), error: 'boom' } }),
  'POST /v1/workers/release': async (caller) => ({ url: '/v1/workers/release', body: await leased(caller) }),
  'GET /v1/keys': async () => ({ url: '/v1/keys' }),
  'POST /v1/keys': async () => ({ url: '/v1/keys', body: { name: 'matrix', scopes: ['read'] } }),
  'POST /v1/admin/log-level': async () => ({ url: '/v1/admin/log-level', body: { level: 'info' } }),
  'POST /v1/keys/:id/revoke': async () => {
    const created = await admin('POST', '/v1/keys', { name: 'to-revoke', scopes: ['read'] });
    return { url: `/v1/keys/${created.body.id}/revoke` };
  },
  'GET /v1/audit': async () => ({ url: '/v1/audit?limit=5' }),
  'GET /v1/interrupts': async () => ({ url: '/v1/interrupts?state=pending&limit=5' }),
  'GET /v1/interrupts/:id': async () => ({ url: `/v1/interrupts/${await pendingInterrupt()}` }),
  'POST /v1/interrupts/:id/resume': async () => ({ url: `/v1/interrupts/${await pendingInterrupt()}/resume`, body: { input: { ok: true } } }),
  'POST /mcp': async () => ({ url: '/mcp', body: { jsonrpc: '2.0', id: 1, method: 'tools/list' } }),
  'POST /v1/session': async () => ({ url: '/v1/session', body: { key: ADMIN_KEY } }),
  'POST /v1/jobs/bulk': async () => ({ url: '/v1/jobs/bulk', body: { action: 'cancel', filter: { handler: 'no-such-handler' } } }),
  'GET /v1/jobs/bulk': async () => ({ url: '/v1/jobs/bulk' }),
  'GET /v1/jobs/bulk/:id': async () => {
    const run = await admin('POST', '/v1/jobs/bulk', { action: 'cancel', filter: { handler: 'no-such-handler' } });
    return { url: `/v1/jobs/bulk/${run.body.id}` };
  },
  'GET /v1/session': async () => ({ url: '/v1/session' }),
  'DELETE /v1/session': async () => ({ url: '/v1/session' }),
};

function expected(allowed: readonly RouteScope[], caller: string): 'ok' | 401 | 403 {
  if (allowed.includes('public')) return 'ok';
  if (caller === 'none' || caller === 'wrong') return 401;
  if (caller === 'admin' || allowed.includes(caller as RouteScope)) return 'ok';
  return 403;
}

describe('auth matrix: every route × every caller', () => {
  it.each(Object.keys(ROUTES) as RouteName[])('%s', async (route) => {
    const [method] = route.split(' ') as ['GET' | 'POST'];
    const outcomes: string[] = [];
    const fixture = fixtures[route] ?? (async () => ({ url: route.split(' ')[1]!.replace(/:\w+/g, '1'), ...(method === 'POST' ? { body: {} } : {}) }));
    for (const caller of ['none', 'wrong', ...SCOPES]) {
      const call = await fixture(caller);
      const res = await injectAs(node, keys[caller] ?? null, method, call.url, call.body);
      const want = expected(ROUTES[route].scope, caller);
      const passed = res.status >= 200 && res.status < 300 ? 'ok' : res.status;
      const got = !fixtures[route] && want === 'ok' && passed !== 401 && passed !== 403 ? 'ok' : passed;
      outcomes.push(`${caller}:${got}`);
      if (got !== want) {
        throw new Error(`${route} as ${caller}: expected ${want}, got ${res.status} ${JSON.stringify(res.body)?.slice(0, 300)}`);
      }
      if (want !== 'ok') {
        expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(res.body.type).toBe(`https://drover.dev/problems/${want === 401 ? 'unauthorized' : 'forbidden'}`);
      }
    }
    expect(outcomes).toHaveLength(2 + SCOPES.length);
  });
});

describe('the audit trail', () => {
  it('is readable by an admin key only: read, produce, work and resume keys get 403', async () => {
    expect(ROUTES['GET /v1/audit'].scope).toEqual(['admin']);
    for (const scope of ['read', 'produce', 'work', 'resume'] as const) {
      const res = await injectAs(node, keys[scope]!, 'GET', '/v1/audit?limit=5');
      expect(res.status, scope).toBe(403);
      expect(res.body.type).toBe('https://drover.dev/problems/forbidden');
    }
    expect((await injectAs(node, keys.admin!, 'GET', '/v1/audit?limit=5')).status).toBe(200);
  });
});

describe('the route table', () => {
  it('matches every route the server registers, with the scope each declares', async () => {
    const doc = (await node.request('GET', '/v1/openapi.json')).body;
    const registered = new Map<string, string[]>();
    for (const [path, operations] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      for (const [method, operation] of Object.entries(operations)) {
        registered.set(`${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`, operation['x-drover-scope']);
      }
    }
    for (const [route, info] of Object.entries(ROUTES)) {
      expect(registered.get(route), `${route} is in the table but not registered with that scope`).toEqual([...info.scope]);
    }
    // Routes added by other parts of the system must at least declare a scope (undeclared means public).
    for (const [route, scope] of registered) {
      if (!(route in ROUTES)) expect(scope, `${route} is registered but missing from src/api/routes/scopes.ts`).toBeDefined();
    }
  });

  it('is the table in docs/api.md', () => {
    const doc = readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8');
    // The scope table is the one in the Authentication section; other tables name routes too.
    const section = doc.slice(doc.indexOf('## Authentication'), doc.indexOf('\n## ', doc.indexOf('## Authentication') + 1));
    const rows = new Map<string, string[]>();
    for (const line of section.split('\n')) {
      const match = /^\| `((?:GET|POST|DELETE) \S+)` \| ([^|]+) \|/.exec(line);
      if (!match) continue;
      const cell = match[2]!.trim();
      rows.set(match[1]!, cell === 'none' ? ['public'] : [...cell.matchAll(/`(\w+)`/g)].map((m) => m[1]!));
    }
    const table = Object.fromEntries(Object.entries(ROUTES).map(([route, info]) => [route, [...info.scope]]));
    expect(Object.fromEntries(rows)).toEqual(table);
  });

  it('is what the OpenAPI document says, with bearer security on every non-public route', async () => {
    const doc = (await node.request('GET', '/v1/openapi.json')).body;
    expect(doc.openapi).toBe('3.0.3');
    expect(doc.components.securitySchemes.bearerAuth).toEqual(expect.objectContaining({ type: 'http', scheme: 'bearer' }));
    const jobs = doc.paths['/v1/jobs/{id}'].get;
    expect(jobs.summary).toBe(ROUTES['GET /v1/jobs/:id'].summary);
    expect(jobs.security).toEqual([{ bearerAuth: [] }]);
    expect(doc.paths['/health/live'].get.security).toBeUndefined();
    expect(doc.paths['/v1/workers/lease'].post.requestBody.content['application/json'].schema.required).toEqual(['handlers']);
  });
});
