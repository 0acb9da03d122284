/**
 * `drover start` with `server.tls`: HTTPS from the first request, and a
 * renewed certificate is picked up on SIGHUP without a restart (new
 * connections see it), the way certbot/cert-manager renewals work.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { killAllChildren, startChildNode } from '../helpers/child-node.js';
import { waitFor } from '../helpers/wait-for.js';

const dirs: string[] = [];
afterEach(async () => {
  await killAllChildren();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function selfSigned(dir: string, name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', `/CN=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { cert, key };
}

function peerName(url: string, ca: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`${url}/health/live`, { ca, agent: false }, (res) => {
      const cn = String((res.socket as TLSSocket).getPeerCertificate().subject?.CN);
      res.resume();
      res.on('end', () => resolve(cn));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('drover start with server.tls', () => {
  it('serves HTTPS and loads a renewed certificate on SIGHUP', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-tls-e2e-'));
    dirs.push(dir);
    const first = selfSigned(dir, 'first');
    const second = selfSigned(dir, 'second');
    const live = { cert: join(dir, 'live.crt'), key: join(dir, 'live.key') };
    copyFileSync(first.cert, live.cert);
    copyFileSync(first.key, live.key);
    const config = join(dir, 'drover.config.mjs');
    writeFileSync(config, `export default ${JSON.stringify({ handlers: [], server: { tls: { certFile: live.cert, keyFile: live.key } } })};\n`);
    const node = await startChildNode({ config, env: { DROVER_DATABASE_URL: join(dir, 'drover.db'), DROVER_BOOTSTRAP_ADMIN_KEY: 'drv_e2e_admin_key_0123456789abcdef', DROVER_LOG_LEVEL: 'info' } });
    expect(node.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const ca = Buffer.concat([readFileSync(first.cert), readFileSync(second.cert)]);
    expect(await peerName(node.url, ca)).toBe('first');

    copyFileSync(second.cert, live.cert);
    copyFileSync(second.key, live.key);
    node.child.kill('SIGHUP');
    await waitFor(async () => (await peerName(node.url, ca)) === 'second', { timeoutMs: 5000, message: 'new connections see the renewed certificate' });
    // The node also watches the files; the log says the signal did it.
    await waitFor(() => node.stdout.some((line) => line.includes('TLS certificate reloaded') && line.includes('"trigger":"SIGHUP"')), { timeoutMs: 3000, message: 'a reload logged for SIGHUP' });

    node.child.kill('SIGTERM');
    expect((await node.exited).code).toBe(0);
  }, 30_000);
});
