/**
 * Issue 15, "also expected": built-in TLS (reloaded without a restart),
 * security headers on every response, and the switch that keeps `/metrics`
 * off the API port.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ADMIN_KEY, startTestNode, type TestNode } from '../helpers/node.js';
import { httpsGet, renewableCert } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait-for.js';
import { listen } from './support.js';

let node: TestNode | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await node?.close();
  node = undefined;
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('built-in TLS', () => {
  it('serves HTTPS with the configured files and picks up replaced files on reload', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-tls-'));
    dirs.push(dir);
    const { live, ca, renew, breakKey } = renewableCert(dir);
    node = await startTestNode({ handlers: [], server: { tls: { certFile: live.cert, keyFile: live.key } } });
    const plain = await listen(node);
    const url = plain.replace('http:', 'https:');

    const before = await httpsGet(url, ca);
    expect(before.status).toBe(200);
    expect(before.cn).toBe('first');
    expect(before.headers['strict-transport-security']).toMatch(/max-age=\d+/);

    // Renewal: the files are replaced, then the operator sends SIGHUP (drover start calls reloadTls).
    renew();
    expect((await httpsGet(url, ca)).cn).toBe('first');
    expect(node.reloadTls()).toBe(true);
    const after = await httpsGet(url, ca);
    expect(after.status).toBe(200);
    expect(after.cn).toBe('second');

    // A broken file keeps the current certificate.
    breakKey();
    expect(() => node!.reloadTls()).toThrow();
    expect((await httpsGet(url, ca)).cn).toBe('second');
  });

  it('picks up renewed files without a signal (the files are watched)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-tls-'));
    dirs.push(dir);
    const { live, ca, renew } = renewableCert(dir);
    node = await startTestNode({ handlers: [], server: { tls: { certFile: live.cert, keyFile: live.key } } });
    const url = (await listen(node)).replace('http:', 'https:');
    expect((await httpsGet(url, ca)).cn).toBe('first');
    renew();
    await waitFor(async () => (await httpsGet(url, ca)).cn === 'second', { timeoutMs: 8000, intervalMs: 200, message: 'the renewed certificate is served' });
    expect(node.logLines.some((l) => l.msg === 'TLS certificate reloaded; new connections use it')).toBe(true);
  });

  it('names the unreadable file at start', async () => {
    await expect(startTestNode({ handlers: [], server: { tls: { certFile: '/nonexistent/c.pem', keyFile: '/nonexistent/k.pem' } } })).rejects.toThrow(/server\.tls\.certFile: cannot read "\/nonexistent\/c\.pem"/);
  });

  it('is off by default: reloadTls is a no-op and there is no HSTS', async () => {
    node = await startTestNode({ handlers: [] });
    expect(node.reloadTls()).toBe(false);
    const response = await node.app.inject({ method: 'GET', url: '/health/live' });
    expect(response.headers['strict-transport-security']).toBeUndefined();
  });
});

describe('security headers', () => {
  it('are on every response: success, problem+json, 404, metrics', async () => {
    node = await startTestNode({ handlers: [] });
    for (const [url, auth] of [['/health/live', false], ['/v1/queues', true], ['/v1/queues', false], ['/nope', false], ['/metrics', false]] as const) {
      const response = await node.app.inject({ method: 'GET', url, headers: auth ? { authorization: `Bearer ${ADMIN_KEY}` } : {} });
      expect(response.headers['x-content-type-options'], url).toBe('nosniff');
      expect(response.headers['cache-control'], url).toBe('no-store');
      expect(response.headers['referrer-policy'], url).toBe('no-referrer');
      expect(response.headers['content-security-policy'], url).toMatch(/default-src 'none'/);
      expect(response.headers['x-frame-options'], url).toBe('DENY');
    }
  });
});

describe('metrics on the API port', () => {
  it('is served by default and turned off by metrics.onApiPort: false (probes stay)', async () => {
    node = await startTestNode({ handlers: [] });
    expect((await node.app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(200);
    await node.close();
    node = await startTestNode({ handlers: [], metrics: { onApiPort: false } });
    const off = await node.app.inject({ method: 'GET', url: '/metrics' });
    expect(off.statusCode).toBe(404);
    expect(off.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect((await node.app.inject({ method: 'GET', url: '/health/ready' })).statusCode).toBe(200);
  });

  it('warns at start when the API is exposed over plain HTTP with /metrics on it, and not on loopback', async () => {
    node = await startTestNode({ handlers: [], server: { host: '0.0.0.0' } });
    const warnings = node.logLines.filter((l) => l.level === 'warn').map((l) => String(l.msg));
    expect(warnings.some((m) => m.includes('plain HTTP'))).toBe(true);
    expect(warnings.some((m) => m.includes('/metrics is served unauthenticated'))).toBe(true);
    await node.close();
    node = await startTestNode({ handlers: [], server: { host: '0.0.0.0', trustProxy: ['127.0.0.1'] }, metrics: { onApiPort: false } });
    expect(node.logLines.filter((l) => l.level === 'warn' && /plain HTTP|\/metrics/.test(String(l.msg)))).toEqual([]);
    await node.close();
    node = await startTestNode({ handlers: [] });
    expect(node.logLines.filter((l) => l.level === 'warn' && /plain HTTP|\/metrics/.test(String(l.msg)))).toEqual([]);
  });

  it('moves to its own listener with metrics.port', async () => {
    node = await startTestNode({ handlers: [], metrics: { port: 0 } });
    expect((await node.app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(404);
    const separate = await node.metricsApp!.inject({ method: 'GET', url: '/metrics' });
    expect(separate.statusCode).toBe(200);
    expect(separate.headers['x-content-type-options']).toBe('nosniff');
  });
});
