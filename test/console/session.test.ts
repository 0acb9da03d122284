/**
 * The console's session over the API (no browser): the cookie's attributes,
 * the session id stored only as a hash, CSRF on state-changing calls, scopes
 * carried from the key, sign-out and expiry on the server, sessions shared by
 * nodes on one PostgreSQL store; and the static files' headers.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_CSP } from '../../src/api/routes/console.js';
import { injectAs, keyWith } from '../api/support.js';
import { renewableCert } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait-for.js';
import { ADMIN_KEY, PG_URL, startTestNode, testEngine, type TestNode } from '../helpers/node.js';

let node: TestNode;
let offset = 0;
const TTL = 60_000;

beforeAll(async () => {
  node = await startTestNode(
    { handlers: [{ name: 'later', run: async () => undefined }], rateLimit: { enabled: false }, console: { sessionTtlMs: TTL } },
    { clock: () => Date.now() + offset },
  );
});
afterAll(async () => node?.close());

async function signIn(key: string): Promise<{ cookie: string; csrf: string; setCookie: string; status: number }> {
  const res = await node.app.inject({ method: 'POST', url: '/v1/session', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ key }) });
  const setCookie = String(res.headers['set-cookie'] ?? '');
  return { cookie: setCookie.split(';')[0]!, csrf: res.json().csrfToken, setCookie, status: res.statusCode };
}

const asSession = (cookie: string, method: 'GET' | 'POST' | 'DELETE', url: string, headers: Record<string, string> = {}) =>
  node.app.inject({ method, url, headers: { cookie, ...headers } });

const delayedJob = async () => (await node.request('POST', '/v1/jobs', { handler: 'later', delayMs: 3_600_000 })).body.id as string;

describe('sign-in', () => {
  it('sets an HttpOnly, SameSite=Strict cookie with an expiry (not Secure without TLS) and answers the key and a CSRF token', async () => {
    const res = await node.app.inject({ method: 'POST', url: '/v1/session', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ key: ADMIN_KEY }) });
    expect(res.statusCode).toBe(201);
    const setCookie = String(res.headers['set-cookie']);
    expect(setCookie).toMatch(/^drover_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=60$/);
    const body = res.json();
    expect(body.key).toMatchObject({ name: expect.any(String), scopes: ['admin'] });
    expect(body.csrfToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Date.parse(body.expiresAt)).toBeGreaterThan(Date.now());
    expect(JSON.stringify(body)).not.toContain(ADMIN_KEY);
  });

  it('marks the cookie Secure when the node serves TLS', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-console-tls-'));
    const { live } = renewableCert(dir);
    const tls = await startTestNode({ handlers: [], server: { tls: { certFile: live.cert, keyFile: live.key } } });
    try {
      const res = await tls.app.inject({ method: 'POST', url: '/v1/session', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ key: ADMIN_KEY }) });
      expect(res.statusCode).toBe(201);
      expect(String(res.headers['set-cookie'])).toMatch(/; HttpOnly; SameSite=Strict; Max-Age=\d+; Secure$/);
    } finally {
      await tls.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stores only the hash of the session id, never the id or the key', async () => {
    const { cookie } = await signIn(ADMIN_KEY);
    const id = cookie.split('=')[1]!;
    const doc = (await node.store.getMeta('console_sessions'))!;
    expect(doc).toContain(createHash('sha256').update(id).digest('hex'));
    expect(doc).not.toContain(id);
    expect(doc).not.toContain(ADMIN_KEY);
  });

  it('refuses an unknown key (401) and a work-only key (403); a bad body is 422', async () => {
    expect((await signIn('drv_never_issued_0000000000000000')).status).toBe(401);
    expect((await signIn(await keyWith(node, ['work']))).status).toBe(403);
    const bad = await node.app.inject({ method: 'POST', url: '/v1/session', headers: { 'content-type': 'application/json' }, payload: '{"nope":1}' });
    expect(bad.statusCode).toBe(422);
    expect(bad.headers['content-type']).toMatch(/^application\/problem\+json/);
  });

  it('GET /v1/session gives a reloaded page its CSRF token back; with a bearer key there is none', async () => {
    const { cookie, csrf } = await signIn(ADMIN_KEY);
    expect((await asSession(cookie, 'GET', '/v1/session')).json()).toMatchObject({ csrfToken: csrf, key: { scopes: ['admin'] } });
    expect((await node.request('GET', '/v1/session')).body).toMatchObject({ csrfToken: null, expiresAt: null });
    expect((await node.app.inject({ method: 'GET', url: '/v1/session' })).statusCode).toBe(401);
  });
});

describe('CSRF and scopes with the cookie', () => {
  it('reads with the cookie alone; a state-changing call without the CSRF token, or with a wrong one, is refused and changes nothing', async () => {
    const { cookie, csrf } = await signIn(ADMIN_KEY);
    expect((await asSession(cookie, 'GET', '/v1/jobs?limit=1')).statusCode).toBe(200);
    const id = await delayedJob();
    for (const headers of [{} as Record<string, string>, { 'x-drover-csrf': 'forged' }, { 'x-drover-csrf': csrf.slice(0, -1) + (csrf.endsWith('A') ? 'B' : 'A') }]) {
      const refused = await asSession(cookie, 'POST', `/v1/jobs/${id}/cancel`, headers);
      expect(refused.statusCode).toBe(403);
      expect(refused.json().type).toBe('https://drover.dev/problems/csrf-failed');
    }
    expect((await node.request('GET', `/v1/jobs/${id}`)).body.state).toBe('scheduled');
    const done = await asSession(cookie, 'POST', `/v1/jobs/${id}/cancel`, { 'x-drover-csrf': csrf });
    expect(done.statusCode).toBe(200);
    expect(done.json().state).toBe('cancelled');
  });

  it('a read key\'s session reads but is refused every action, token or not', async () => {
    const { cookie, csrf } = await signIn(await keyWith(node, ['read']));
    expect((await asSession(cookie, 'GET', '/v1/handlers')).statusCode).toBe(200);
    const id = await delayedJob();
    const forged = await asSession(cookie, 'POST', `/v1/jobs/${id}/cancel`, { 'x-drover-csrf': csrf });
    expect(forged.statusCode).toBe(403);
    expect(forged.json().type).toBe('https://drover.dev/problems/forbidden');
    expect((await asSession(cookie, 'POST', '/v1/handlers/later/pause', { 'x-drover-csrf': csrf })).statusCode).toBe(403);
    expect((await node.request('GET', `/v1/jobs/${id}`)).body.state).toBe('scheduled');
  });

  it('a session ends with its key: revoked keys sign nobody in', async () => {
    const created = await node.request('POST', '/v1/keys', { name: 'short-lived', scopes: ['read'] });
    const { cookie } = await signIn(created.body.secret);
    expect((await asSession(cookie, 'GET', '/v1/queues')).statusCode).toBe(200);
    await node.request('POST', `/v1/keys/${created.body.id}/revoke`);
    expect((await asSession(cookie, 'GET', '/v1/queues')).statusCode).toBe(401);
  });
});

describe('sign-out and expiry', () => {
  it('sign-out needs the CSRF token, ends the session on the server and clears the cookie', async () => {
    const { cookie, csrf } = await signIn(ADMIN_KEY);
    expect((await asSession(cookie, 'DELETE', '/v1/session')).statusCode).toBe(403);
    const out = await asSession(cookie, 'DELETE', '/v1/session', { 'x-drover-csrf': csrf });
    expect(out.statusCode).toBe(204);
    expect(String(out.headers['set-cookie'])).toMatch(/^drover_session=; .*Max-Age=0/);
    // The old cookie, replayed, is dead.
    const after = await asSession(cookie, 'GET', '/v1/jobs');
    expect(after.statusCode).toBe(401);
    expect(after.json().detail).toMatch(/sign in again/);
  });

  it('a session expires after console.sessionTtlMs', async () => {
    const { cookie } = await signIn(ADMIN_KEY);
    expect((await asSession(cookie, 'GET', '/v1/status')).statusCode).toBe(200);
    offset += TTL + 3_000; // past the TTL and the node's 2 s cache of the session document
    try {
      expect((await asSession(cookie, 'GET', '/v1/status')).statusCode).toBe(401);
    } finally {
      offset = 0;
    }
  });
});

describe('the console files', () => {
  it('serves index.html with no-cache and the strict CSP, hashed assets as immutable, /console redirects', async () => {
    const index = await node.app.inject({ method: 'GET', url: '/console/' });
    expect(index.statusCode).toBe(200);
    expect(index.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(index.headers['cache-control']).toBe('no-cache');
    expect(index.headers['content-security-policy']).toBe(CONSOLE_CSP);
    expect(CONSOLE_CSP).toContain("script-src 'self'");
    expect(CONSOLE_CSP).not.toContain('unsafe-inline');
    expect(index.headers['x-frame-options']).toBe('DENY');
    expect(index.body).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline script
    expect(index.body).not.toMatch(/https?:\/\//); // nothing from another host
    const asset = /src="(\/console\/assets\/[^"]+\.js)"/.exec(index.body)![1]!;
    const js = await node.app.inject({ method: 'GET', url: asset });
    expect(js.statusCode).toBe(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect((await node.app.inject({ method: 'GET', url: '/console' })).headers.location).toBe('/console/');
    const missing = await node.app.inject({ method: 'GET', url: '/console/assets/nope.js' });
    expect(missing.statusCode).toBe(404);
    expect(missing.headers['content-type']).toMatch(/^application\/problem\+json/);
  });

  it('loads in under 200 kB gzipped: the page and every file it names', async () => {
    const index = await node.app.inject({ method: 'GET', url: '/console/' });
    const files = [...index.body.matchAll(/(?:src|href)="(\/console\/[^"]+)"/g)].map((m) => m[1]!);
    expect(files.length).toBeGreaterThanOrEqual(2); // the script and the stylesheet
    let total = gzipSync(index.rawPayload).length;
    for (const file of files) total += gzipSync((await node.app.inject({ method: 'GET', url: file })).rawPayload).length;
    expect(total).toBeLessThan(200 * 1024);
  });

  it('console.enabled: false serves no console and signs nobody in', async () => {
    const off = await startTestNode({ handlers: [], console: { enabled: false } });
    try {
      expect((await off.app.inject({ method: 'GET', url: '/console/' })).statusCode).toBe(404);
      const res = await off.app.inject({ method: 'POST', url: '/v1/session', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ key: ADMIN_KEY }) });
      expect(res.statusCode).toBe(404);
      expect(res.json().detail).toMatch(/console\.enabled/);
    } finally {
      await off.close();
    }
  });
});

describe.runIf(testEngine() === 'postgres')('several nodes on one PostgreSQL store', () => {
  it('a session made on one node works on another, and a sign-out on either ends it on both', async () => {
    const schema = (node.runtime.config as unknown as { postgres: { schema: string } }).postgres.schema;
    // Port 0: a node id of its own (two nodes on one host and port would be one node to the store).
    const other = await startTestNode({ databaseUrl: PG_URL, postgres: { schema, poolMax: 2 }, server: { port: 0 }, handlers: [{ name: 'later', run: async () => undefined }], rateLimit: { enabled: false } });
    try {
      const { cookie, csrf } = await signIn(ADMIN_KEY);
      const there = await other.app.inject({ method: 'GET', url: '/v1/session', headers: { cookie } });
      expect(there.statusCode).toBe(200);
      expect(there.json().csrfToken).toBe(csrf);
      expect((await other.app.inject({ method: 'DELETE', url: '/v1/session', headers: { cookie, 'x-drover-csrf': csrf } })).statusCode).toBe(204);
      // This node cached the session document up to 2 s ago.
      await waitFor(async () => (await asSession(cookie, 'GET', '/v1/jobs')).statusCode === 401, { timeoutMs: 5_000, intervalMs: 200, message: 'the session ended on the first node' });
    } finally {
      await other.close();
    }
  });
});

it('injectAs with a bearer key ignores any cookie (bearer wins, no CSRF needed)', async () => {
  const id = await delayedJob();
  const res = await injectAs(node, ADMIN_KEY, 'POST', `/v1/jobs/${id}/cancel`, undefined, { cookie: 'drover_session=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' });
  expect(res.status).toBe(200);
});
