/**
 * Disaster-recovery drill, end to end through the CLI as an operator runs it:
 * a node works through a steady stream of jobs; `drover backup create` copies
 * the store mid-load while the producer keeps going; the backup verifies; it
 * is restored into a fresh location and a node started there finishes every
 * job that was accepted before the backup — including the ones that were
 * running when it was taken. A backup with one flipped byte fails verify, and
 * restore refuses a store a node is running on.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { loadMigrations } from '../../src/store/sqlite/migrator.js';
import { api, killAllChildren, startChildNode, type ChildNode } from '../helpers/child-node.js';
import { waitFor } from '../helpers/wait-for.js';
import { drover } from './cli.js';

const CONFIG = fileURLToPath(new URL('./fixtures/dr-workload.config.mjs', import.meta.url));
const KEY = 'drv_dr_drill_admin_key_0123456789abc';
const BATCH = 100;

const dir = mkdtempSync(join(tmpdir(), 'drover-dr-'));
afterAll(async () => {
  await killAllChildren();
  rmSync(dir, { recursive: true, force: true });
});

/** Sends batches of jobs until stopped; `accepted` holds every id the node acknowledged. */
function producer(node: ChildNode) {
  const accepted: string[] = [];
  let stopped = false;
  let n = 0;
  const done = (async () => {
    while (!stopped) {
      const res = await api(node.url, KEY, 'POST', '/v1/jobs', { jobs: Array.from({ length: BATCH }, () => ({ handler: 'work', payload: { n: n++ } })) });
      if (res.status !== 202) throw new Error(`intake answered ${res.status}: ${JSON.stringify(res.body)}`);
      for (const job of res.body.jobs) accepted.push(job.id);
      // Pace the producer near what the node drains, so work is always running.
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  return { accepted, stop: () => ((stopped = true), done) };
}

async function unfinished(node: ChildNode): Promise<number> {
  const res = await api(node.url, KEY, 'GET', '/v1/queues');
  const c = res.body.queues.find((q: any) => q.name === 'default').counts;
  return c.scheduled + c.queued + c.running;
}

describe('DR drill', () => {
  it('backs up mid-load, verifies, restores elsewhere, and finishes every job accepted before the backup', { timeout: 180_000 }, async () => {
    const live = { DROVER_DATABASE_URL: join(dir, 'live', 'drover.db'), DROVER_BOOTSTRAP_ADMIN_KEY: KEY };
    const node = await startChildNode({ config: CONFIG, env: live });
    const load = producer(node);
    await waitFor(() => load.accepted.length >= 1_500, { timeoutMs: 30_000, message: '1,500 jobs accepted' });

    // Everything acknowledged before the backup starts is committed, so it must be in the backup.
    const beforeBackup = new Set(load.accepted);
    const created = await drover(['backup', 'create', '--out', join(dir, 'backups'), '--json'], { DROVER_DATABASE_URL: live.DROVER_DATABASE_URL });
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    const { path, manifest } = JSON.parse(created.stdout);
    const afterBackup = load.accepted.length;
    // The workload keeps going after the backup.
    await waitFor(() => load.accepted.length >= afterBackup + 500, { timeoutMs: 30_000, message: '500 more jobs after the backup' });
    await load.stop();
    process.kill(node.pid, 'SIGTERM');
    expect((await node.exited).code).toBe(0);

    expect(manifest).toMatchObject({ engine: 'sqlite', schemaVersion: loadMigrations().length });
    expect(manifest.counts.jobs).toBeGreaterThanOrEqual(beforeBackup.size);
    // The drill proves something only if the backup caught work in flight.
    const copy = new Database(join(path, 'drover.db'), { readonly: true });
    const inBackup = Object.fromEntries((copy.prepare('SELECT state, count(*) AS n FROM jobs GROUP BY state').all() as Array<{ state: string; n: number }>).map((r) => [r.state, r.n]));
    copy.close();
    expect(inBackup.running ?? 0, `states in the backup: ${JSON.stringify(inBackup)}`).toBeGreaterThan(0);
    expect(inBackup.queued ?? 0).toBeGreaterThan(0);

    // Verifying elsewhere trusts only keys named there: the source node's audit key, by the fingerprint it prints.
    const pubkey = await drover(['audit', 'pubkey', '--json'], { DROVER_DATABASE_URL: live.DROVER_DATABASE_URL });
    const { keyId } = JSON.parse(pubkey.stdout);
    const unnamed = await drover(['backup', 'verify', path], {});
    expect(unnamed.code).not.toBe(0);
    expect(unnamed.stdout).toContain(`FAIL  signature: signed by ${keyId}, a key this node does not trust`);
    const verified = await drover(['backup', 'verify', path, '--trust-key', keyId], {});
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    expect(verified.stdout).toMatch(/^ok {4}sha256 drover\.db: /m);
    expect(verified.stdout).toMatch(/^ok {4}integrity: /m);
    expect(verified.stdout).toMatch(/^ok {4}row counts: /m);

    const corrupt = join(dir, 'corrupt');
    cpSync(path, corrupt, { recursive: true });
    const bytes = readFileSync(join(corrupt, 'drover.db'));
    bytes[Math.floor(bytes.length * 0.6)]! ^= 0x10;
    writeFileSync(join(corrupt, 'drover.db'), bytes);
    const rejected = await drover(['backup', 'verify', corrupt, '--trust-key', keyId], {});
    expect(rejected.code).not.toBe(0);
    expect(rejected.stdout).toMatch(/^FAIL {2}sha256 drover\.db: expected/m);
    expect(rejected.stderr).toMatch(/failed verification \(sha256 drover\.db, contents\)/);

    const fresh = { DROVER_DATABASE_URL: join(dir, 'restored', 'drover.db') };
    // A fresh node trusts no key: restore refuses until the operator names the backup's key.
    const unnamedRestore = await drover(['backup', 'restore', path], fresh);
    expect(unnamedRestore.code).not.toBe(0);
    expect(unnamedRestore.stderr).toContain(`pass --trust-new-key ${keyId}`);
    const restored = await drover(['backup', 'restore', path, '--trust-new-key', keyId], fresh);
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stdout).toContain(`now trusting audit key ${keyId} (named by --trust-new-key)`);
    expect(restored.stdout).toContain('there was no previous store');
    expect(restored.stdout).toContain(`${inBackup.running} job(s) that were running at backup time are queued to run again`);

    const second = await startChildNode({ config: CONFIG, env: { ...fresh, DROVER_NODE_ID: 'a-different-node' } });
    // A running node owns the store: restoring over it is refused with how to stop it.
    const refused = await drover(['backup', 'restore', path, '--trust-new-key', keyId], fresh);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(`in use by drover pid ${second.pid}. Stop that node first`);

    await waitFor(async () => (await unfinished(second)) === 0, { timeoutMs: 60_000, intervalMs: 100, message: 'the restored node finishing its work' });
    process.kill(second.pid, 'SIGTERM');
    expect((await second.exited).code).toBe(0);

    const db = new Database(fresh.DROVER_DATABASE_URL, { readonly: true });
    try {
      const states = new Map((db.prepare('SELECT id, state FROM jobs').all() as Array<{ id: number; state: string }>).map((r) => [String(r.id), r.state]));
      const missing = [...beforeBackup].filter((id) => !states.has(id));
      const unfinishedIds = [...beforeBackup].filter((id) => states.get(id) !== 'succeeded');
      expect(missing, 'jobs accepted before the backup but absent after the restore').toEqual([]);
      expect(unfinishedIds, 'jobs accepted before the backup that did not succeed').toEqual([]);
      // Requeued by the restore: `crashed` if its handler had started, `released` if it was only leased ahead.
      const rerun = db.prepare("SELECT count(DISTINCT job_id) FROM attempts WHERE outcome IN ('crashed', 'released')").pluck().get() as number;
      expect(rerun).toBe(inBackup.running);
    } finally {
      db.close();
    }

    // The restored trail verifies (the backup's key is trusted there now), restore record included.
    const audit = await drover(['audit', 'verify'], fresh);
    expect(audit.code, audit.stderr).toBe(0);
    expect(audit.stdout).toMatch(/^ok: store: \d+ records/m);
    const list = await drover(['audit', 'list', '--limit', '5'], fresh);
    expect(list.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l).action)).toContain('backup.restore');
  });
});
