/** `/v1/keys`: create (secret shown once), list (never secrets), revoke (at once on this node), expiry. */
import { afterEach, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';
import { injectAs } from './support.js';

let node: TestNode | undefined;
afterEach(async () => {
  await node?.close();
  node = undefined;
});

const start = async () => (node = await startTestNode({ handlers: [{ name: 'h', run: async () => undefined }], rateLimit: { enabled: false } }));

describe('/v1/keys', () => {
  it('creates a key whose secret works for its scopes only, and lists keys without secrets', async () => {
    const n = await start();
    const created = await n.request('POST', '/v1/keys', { name: 'billing-service', scopes: ['produce'], expiresInDays: 30 });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id: expect.stringMatching(/^key_/), name: 'billing-service', scopes: ['produce'], state: 'active', revokedAt: null });
    expect(created.body.secret).toMatch(/^drv_[A-Za-z0-9_-]{43}$/);
    expect(Date.parse(created.body.expiresAt) - Date.now()).toBeGreaterThan(29 * 86_400_000);

    expect((await injectAs(n, created.body.secret, 'POST', '/v1/jobs', { handler: 'h' })).status).toBe(202);
    expect((await injectAs(n, created.body.secret, 'GET', '/v1/keys')).status).toBe(403);

    const listed = await n.request('GET', '/v1/keys');
    const text = JSON.stringify(listed.body);
    expect(text).not.toContain(created.body.secret);
    expect(text).not.toContain('hash');
    expect(listed.body.keys.map((k: { name: string }) => k.name).sort()).toEqual(['billing-service', 'bootstrap-admin']);
  });

  it('revokes a key at once on this node; a second revoke is 409, an unknown id 404', async () => {
    const n = await start();
    const created = (await n.request('POST', '/v1/keys', { name: 'temp', scopes: ['read'] })).body;
    expect((await injectAs(n, created.secret, 'GET', '/v1/status')).status).toBe(200); // now cached by the verifier
    const revoked = await n.request('POST', `/v1/keys/${created.id}/revoke`);
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ id: created.id, state: 'revoked', revokedAt: expect.any(String) });
    const refused = await injectAs(n, created.secret, 'GET', '/v1/status');
    expect(refused.status).toBe(401);
    expect((await n.request('POST', `/v1/keys/${created.id}/revoke`)).status).toBe(409);
    expect((await n.request('POST', '/v1/keys/key_nope/revoke')).status).toBe(404);
  });

  it('expires a key at its expiresAt', async () => {
    const n = await start();
    // 2 s ahead: far enough that a loaded machine still creates and uses the key before it expires.
    const expiresAt = new Date(Date.now() + 2_000).toISOString();
    const created = (await n.request('POST', '/v1/keys', { name: 'short', scopes: ['read'], expiresAt })).body;
    expect((await injectAs(n, created.secret, 'GET', '/v1/status')).status).toBe(200);
    await waitFor(async () => (await injectAs(n, created.secret, 'GET', '/v1/status')).status === 401, { intervalMs: 50, timeoutMs: 10_000 });
    const listed = (await n.request('GET', '/v1/keys')).body.keys.find((k: { id: string }) => k.id === created.id);
    expect(listed.state).toBe('expired');
  });

  it('validates what it is given', async () => {
    const n = await start();
    const cases: unknown[] = [
      { name: 'x', scopes: [] },
      { name: 'x', scopes: ['root'] },
      { name: 'x', scopes: ['read', 'read'] },
      { name: '', scopes: ['read'] },
      { name: 'x', scopes: ['read'], expiresAt: 'tomorrow' },
      { name: 'x', scopes: ['read'], expiresAt: '2001-01-01T00:00:00Z' },
      { name: 'x', scopes: ['read'], expiresInDays: 0 },
      { name: 'x', scopes: ['read'], expiresInDays: 1, expiresAt: '2999-01-01T00:00:00Z' },
      { name: 'x', scopes: ['read'], secret: 'chosen-by-me-0123456789' },
    ];
    for (const body of cases) {
      const res = await n.request('POST', '/v1/keys', body);
      expect(res.status, JSON.stringify(body)).toBe(422);
    }
    expect((await n.request('GET', '/v1/keys')).body.keys).toHaveLength(1);
  });
});
