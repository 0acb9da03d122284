/**
 * Issue 21 §2: snapshots over HTTP in verified chunks, pulled by `drover
 * backup pull` as users run it (bin/drover), from a node that keeps working.
 * Runs on both engines (vitest projects). A proxy between the CLI and the
 * node corrupts, truncates or forges what passes through, as a broken or
 * hostile network would.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateNodeKey } from '../../src/ops/audit/node-key.js';
import { chunkHashes, SnapshotService } from '../../src/ops/backup/snapshots.js';
import { openStore } from '../../src/store/open.js';
import { keyWith, listen } from '../api/support.js';
import { ADMIN_KEY, startTestNode, testEngine, type TestNode } from '../helpers/node.js';
import { drover } from './cli.js';
import { AuditTrail } from '../../src/ops/audit/audit-trail.js';

const engine = testEngine();
const work = mkdtempSync(join(tmpdir(), 'drover-snapshots-'));
let node: TestNode;
let url: string;
let keyFile: string;
let fingerprint: string;

/** A pass-through proxy that can change one response on its way back. */
interface Tamper {
  url: string;
  /** Requests seen, by path. */
  seen: string[];
  rewrite: ((path: string, status: number, body: Buffer) => Buffer | 'cut' | null) | null;
  close(): Promise<void>;
}

async function tamperingProxy(target: string): Promise<Tamper> {
  const proxy: Tamper = { url: '', seen: [], rewrite: null, close: async () => undefined };
  const server = http.createServer((req, res) => {
    proxy.seen.push(`${req.method} ${req.url}`);
    const upstream = http.request(target + req.url, { method: req.method, headers: req.headers }, (up) => {
      const parts: Buffer[] = [];
      up.on('data', (d: Buffer) => parts.push(d));
      up.on('end', () => {
        const body = Buffer.concat(parts);
        const changed = proxy.rewrite?.(req.url ?? '', up.statusCode ?? 0, body) ?? null;
        const headers = { ...up.headers };
        delete headers['content-length'];
        delete headers['transfer-encoding'];
        if (changed === 'cut') {
          // Promise the whole chunk, send half, and drop the connection: a transfer cut short.
          res.writeHead(up.statusCode ?? 502, { ...headers, 'content-length': String(body.length) });
          res.write(body.subarray(0, Math.floor(body.length / 2)));
          res.socket?.destroy();
          return;
        }
        const out = changed ?? body;
        res.writeHead(up.statusCode ?? 502, { ...headers, 'content-length': String(out.length) });
        res.end(out);
      });
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return proxy;
}

const pull = (args: string[], env: Record<string, string> = {}) =>
  drover(['backup', 'pull', '--key-file', keyFile, '--trust-key', fingerprint, '--chunk-bytes', '65536', '--json', ...args], { DROVER_DATABASE_URL: join(work, 'puller', 'drover.db'), ...env }, 120_000);

beforeAll(async () => {
  node = await startTestNode({
    handlers: [{ name: 'work', concurrency: 4, run: async () => ({ ok: true }) }],
  });
  url = await listen(node);
  keyFile = join(work, 'admin.key');
  writeFileSync(keyFile, `${ADMIN_KEY}\n`, { mode: 0o600 });
  fingerprint = node.runtime.audit.key.keyId;
});

afterAll(async () => {
  await node?.close();
  rmSync(work, { recursive: true, force: true });
});

let proxies: Tamper[] = [];
afterEach(async () => {
  await Promise.all(proxies.map((p) => p.close()));
  proxies = [];
});

describe(`snapshots over HTTP (${engine})`, () => {
  it('pulls a snapshot from a node under load into a backup that verifies and holds every job acknowledged before it', { timeout: 120_000 }, async () => {
    const before = await node.request('POST', '/v1/jobs', { jobs: Array.from({ length: 300 }, (_, i) => ({ handler: 'work', payload: { i, pad: randomBytes(600).toString('base64') } })) });
    expect(before.status).toBe(202);
    const acknowledged: string[] = before.body.jobs.map((j: { id: string }) => j.id);
    // Keep the node busy while the snapshot is taken and fetched.
    let loading = true;
    const load = (async () => {
      while (loading) await node.request('POST', '/v1/jobs', { jobs: Array.from({ length: 20 }, (_, i) => ({ handler: 'work', payload: { load: i } })) });
    })();
    const out = join(work, 'pulled');
    const result = await pull(['--from', url, '--out', out]);
    loading = false;
    await load;
    expect(result.stderr).not.toMatch(/again/);
    expect(result.code, result.stderr).toBe(0);
    const pulled = JSON.parse(result.stdout);
    expect(pulled.path.startsWith(out)).toBe(true);
    expect(pulled.chunks).toBeGreaterThanOrEqual(1);
    // The pull deleted the snapshot from the node afterwards.
    expect((await node.request('GET', '/v1/snapshots')).body.snapshots).toEqual([]);

    const verified = await drover(['backup', 'verify', pulled.path, '--trust-key', fingerprint, '--json'], { DROVER_DATABASE_URL: engine === 'sqlite' ? join(work, 'v', 'drover.db') : (node.runtime.config.databaseUrl as string) }, 120_000);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    const manifest = JSON.parse(readFileSync(join(pulled.path, 'manifest.json'), 'utf8'));
    expect(manifest.engine).toBe(engine);
    expect(manifest.counts.jobs).toBeGreaterThanOrEqual(300);
    if (engine === 'sqlite') {
      const copy = await openStore(join(pulled.path, 'drover.db'), { lock: false });
      try {
        for (const id of acknowledged) expect(await copy.getJob(id)).not.toBeNull();
        expect((await copy.listJobs({ limit: 100_000 })).length).toBe(manifest.counts.jobs);
      } finally {
        await copy.close();
      }
    }
  });

  it('fetches a corrupted and a cut-short chunk again, and resumes an interrupted pull without fetching verified chunks twice', { timeout: 120_000 }, async () => {
    const proxy = await tamperingProxy(url);
    proxies.push(proxy);
    const hits = new Map<string, number>();
    proxy.rewrite = (path, status, body) => {
      const m = /\/chunks\/(\d+)$/.exec(path);
      if (!m || status !== 200) return null;
      const n = hits.get(m[1]!) ?? 0;
      hits.set(m[1]!, n + 1);
      if (m[1] === '0' && n === 0) {
        const bad = Buffer.from(body);
        bad[Math.floor(bad.length / 2)]! ^= 0xff;
        return bad;
      }
      if (m[1] === '0' && n === 1) return 'cut';
      return null;
    };
    const out = join(work, 'retried');
    const result = await pull(['--from', proxy.url, '--out', out]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/fetching chunk 0 again: chunk 0 does not match its SHA-256/);
    expect(result.stderr).toMatch(/fetching chunk 0 again: chunk 0/);
    expect(hits.get('0')).toBe(3);
    const verified = await drover(['backup', 'verify', JSON.parse(result.stdout).path, '--trust-key', fingerprint], { DROVER_DATABASE_URL: engine === 'sqlite' ? join(work, 'v2', 'drover.db') : (node.runtime.config.databaseUrl as string) }, 120_000);
    expect(verified.code, verified.stdout).toBe(0);

    // Interrupted: the node refuses every chunk after the first, the pull gives up, keeps chunk 0, and a rerun resumes.
    const interrupted = join(work, 'interrupted');
    const snapshot = await node.request('POST', '/v1/snapshots', { chunkBytes: 65_536 });
    expect(snapshot.status).toBe(201);
    const id = snapshot.body.id as string;
    let refusing = true;
    const served: string[] = [];
    proxy.rewrite = (path) => {
      const m = /\/chunks\/(\d+)$/.exec(path);
      if (!m) return null;
      served.push(m[1]!);
      return refusing && m[1] !== '0' ? 'cut' : null;
    };
    expect(snapshot.body.chunkCount).toBeGreaterThan(1);
    const first = await pull(['--from', proxy.url, '--out', interrupted, '--snapshot', id], {});
    expect(first.code).not.toBe(0);
    expect(first.stderr).toMatch(/gave up after 5 attempts \(run the same command again to resume/);
    expect(readdirSync(interrupted).filter((n) => n.startsWith('.pull-'))).toHaveLength(1);
    refusing = false;
    served.length = 0;
    const resumed = await pull(['--from', proxy.url, '--out', interrupted]);
    expect(resumed.code, resumed.stderr).toBe(0);
    const body = JSON.parse(resumed.stdout);
    expect(body.snapshot).toBe(id);
    expect(body.resumedChunks).toBe(1);
    expect(served).not.toContain('0');
    expect(readdirSync(interrupted).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('refuses a forged manifest before fetching any chunk, and a snapshot signed by a key it does not trust', { timeout: 60_000 }, async () => {
    const proxy = await tamperingProxy(url);
    proxies.push(proxy);
    proxy.rewrite = (path, status, body) => {
      if (status !== 201 || path !== '/v1/snapshots') return null;
      const manifest = JSON.parse(body.toString());
      manifest.chunks[0] = '0'.repeat(64);
      return Buffer.from(JSON.stringify(manifest));
    };
    const out = join(work, 'forged');
    const forged = await pull(['--from', proxy.url, '--out', out]);
    expect(forged.code).not.toBe(0);
    expect(forged.stderr).toMatch(/refusing snapshot snap_[0-9a-f]+: the signature by ed25519:[0-9a-f]+ does not verify/);
    expect(proxy.seen.some((s) => s.includes('/chunks/'))).toBe(false);
    expect(existsSync(out) ? readdirSync(out).filter((n) => n.startsWith('drover-backup-')) : []).toEqual([]);

    // Without --trust-key the puller (a fresh machine) trusts nobody: told which fingerprint to check.
    const untrusted = await drover(['backup', 'pull', '--key-file', keyFile, '--from', url, '--out', join(work, 'untrusted')], { DROVER_DATABASE_URL: join(work, 'fresh', 'drover.db') }, 60_000);
    expect(untrusted.code).not.toBe(0);
    expect(untrusted.stderr).toContain(`pass --trust-key ${fingerprint}`);
    // Clean up the snapshots those refused pulls left on the node.
    for (const s of (await node.request('GET', '/v1/snapshots')).body.snapshots) await node.request('DELETE', `/v1/snapshots/${s.id}`);
  });

  it('answers 400 for a chunk out of range, 404 for an unknown snapshot, 403 for a non-admin key, and audits create and delete', async () => {
    const created = await node.request('POST', '/v1/snapshots');
    expect(created.status).toBe(201);
    const { id, chunkCount } = created.body;
    const out = await node.request('GET', `/v1/snapshots/${id}/chunks/${chunkCount}`);
    expect(out.status).toBe(400);
    expect(out.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(out.body.type).toMatch(/out-of-range$/);
    expect((await node.request('GET', `/v1/snapshots/snap_${'0'.repeat(24)}/chunks/0`)).status).toBe(404);
    expect((await node.request('GET', '/v1/snapshots/nonsense/chunks/0')).status).toBe(422);
    const read = await keyWith(node, ['read']);
    expect((await node.request('POST', '/v1/snapshots', undefined, { authorization: `Bearer ${read}` })).status).toBe(403);
    expect((await node.request('GET', `/v1/snapshots/${id}/chunks/0`, undefined, { authorization: `Bearer ${read}` })).status).toBe(403);
    const chunk = await node.app.inject({ method: 'GET', url: `/v1/snapshots/${id}/chunks/0`, headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    expect(chunk.headers['content-type']).toBe('application/octet-stream');
    expect(chunk.headers['x-drover-chunk-sha256']).toBe(created.body.chunks[0]);
    expect((await node.request('DELETE', `/v1/snapshots/${id}`)).status).toBe(204);
    expect((await node.request('GET', `/v1/snapshots/${id}`)).status).toBe(404);
    const actions = (await node.request('GET', '/v1/audit?limit=50')).body.records.map((r: { action: string; target: string }) => `${r.action} ${r.target}`);
    expect(actions).toContain(`snapshot.delete snapshot:${id}`);
    expect(actions.some((a: string) => a.startsWith('snapshot.create backup:'))).toBe(true);
  });
});

describe('SnapshotService', () => {
  it('splits the file into chunks whose hashes cover every byte, keeps at most two, and expires them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-snapsvc-'));
    try {
      const file = join(dir, 'f');
      writeFileSync(file, Buffer.alloc(10_000, 7));
      expect(await chunkHashes(file, 4096)).toHaveLength(3);
      expect(await chunkHashes(file, 10_000)).toHaveLength(1);
      const store = await openStore(join(dir, 'drover.db'));
      await store.migrate();
      let now = Date.now();
      const key = loadOrCreateNodeKey(dir);
      const svc = new SnapshotService({
        store,
        dir: join(dir, 'snapshots'),
        source: join(dir, 'drover.db'),
        nodeId: 'n1',
        auditKeys: () => [],
        signingKey: key,
        audit: new AuditTrail({ store, key }),
        clock: () => now,
        ttlMs: 60_000,
        chunkBytes: 4096,
      });
      // What an earlier process left: removed once older than the TTL; a young one may be another process's, kept.
      mkdirSync(join(dir, 'snapshots', 'old-left'), { recursive: true });
      mkdirSync(join(dir, 'snapshots', 'young-left'), { recursive: true });
      const hourAgo = (Date.now() - 3_600_000) / 1000;
      utimesSync(join(dir, 'snapshots', 'old-left'), hourAgo, hourAgo);
      svc.start();
      expect(readdirSync(join(dir, 'snapshots')).sort()).toEqual(['young-left']);
      const a = await svc.create('test');
      expect(a.chunkCount).toBe(Math.ceil(a.size / 4096));
      const all = Buffer.concat(await Promise.all(Array.from({ length: a.chunkCount }, async (_, n) => (await svc.chunk(a.id, n)).bytes)));
      expect(all.length).toBe(a.size);
      await svc.create('test');
      await expect(svc.create('test')).rejects.toMatchObject({ code: 'too_many_snapshots' });
      // The backup age alert watches real backups: a snapshot is not one.
      expect(await store.getMeta('backup_last_success_at')).toBeNull();
      now += 60_001;
      svc.sweep();
      expect(svc.list()).toEqual([]);
      expect(readdirSync(join(dir, 'snapshots'))).toEqual(['young-left']);
      await expect(svc.chunk(a.id, 0)).rejects.toMatchObject({ code: 'not_found' });
      svc.stop();
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
