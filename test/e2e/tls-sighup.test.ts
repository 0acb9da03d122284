/**
 * `drover start` with `server.tls`: HTTPS from the first request, and a
 * renewed certificate is picked up on SIGHUP without a restart (new
 * connections see it), the way certbot/cert-manager renewals work.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { killAllChildren, startChildNode } from '../helpers/child-node.js';
import { httpsGet, renewableCert } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait-for.js';

const dirs: string[] = [];
afterEach(async () => {
  await killAllChildren();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const peerName = async (url: string, ca: Buffer): Promise<string> => (await httpsGet(url, ca)).cn;

describe('drover start with server.tls', () => {
  it('serves HTTPS and loads a renewed certificate on SIGHUP', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-tls-e2e-'));
    dirs.push(dir);
    const { live, ca, renew } = renewableCert(dir);
    const config = join(dir, 'drover.config.mjs');
    writeFileSync(config, `export default ${JSON.stringify({ handlers: [], server: { tls: { certFile: live.cert, keyFile: live.key } } })};\n`);
    const node = await startChildNode({ config, env: { DROVER_DATABASE_URL: join(dir, 'drover.db'), DROVER_BOOTSTRAP_ADMIN_KEY: 'drv_e2e_admin_key_0123456789abcdef', DROVER_LOG_LEVEL: 'info' } });
    expect(node.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(await peerName(node.url, ca)).toBe('first');

    renew();
    node.child.kill('SIGHUP');
    await waitFor(async () => (await peerName(node.url, ca)) === 'second', { timeoutMs: 5000, message: 'new connections see the renewed certificate' });
    // The node also watches the files; the log says the signal did it.
    await waitFor(() => node.stdout.some((line) => line.includes('TLS certificate reloaded') && line.includes('"trigger":"SIGHUP"')), { timeoutMs: 3000, message: 'a reload logged for SIGHUP' });

    node.child.kill('SIGTERM');
    expect((await node.exited).code).toBe(0);
  }, 30_000);
});
