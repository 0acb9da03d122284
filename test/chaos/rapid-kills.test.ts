/**
 * Only a started handler is a crash: SIGKILL a SQLite node ten times in quick
 * succession while it holds a large lease-ahead buffer (concurrency 2, up to
 * 64 jobs leased ahead). Each restart reclaims the previous incarnation's
 * leases; the buffered jobs never started and must go back with attempt and
 * crash counts unchanged. So: nothing accepted is lost, nothing completes
 * twice, and no job is dead as poison (or has crashes counted) without having
 * started, per the handler's own record of its starts.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { api, killAllChildren, startChildNode } from '../helpers/child-node.js';
import { waitFor } from '../helpers/wait-for.js';

const CONFIG = fileURLToPath(new URL('../fixtures/rapid-kills.config.mjs', import.meta.url));
const KEY = 'drv_rapid_kills_test_admin_key_0123';
const JOBS = 1_500;
const KILLS = 10;
const CONCURRENCY = 2;
const POISON_AFTER = 2;

const dir = mkdtempSync(join(tmpdir(), 'drover-rapid-kills-'));
afterAll(async () => {
  await killAllChildren();
  rmSync(dir, { recursive: true, force: true });
});

/** Starts per job id, and how many jobs finished, from the handler's own record. */
function recorded(file: string): { starts: Map<string, number>; done: number } {
  const starts = new Map<string, number>();
  let done = 0;
  if (!existsSync(file)) return { starts, done };
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const match = /^(start|done) (\d+)$/.exec(line);
    if (!match) continue; // a line cut by a kill
    if (match[1] === 'done') done++;
    else starts.set(match[2]!, (starts.get(match[2]!) ?? 0) + 1);
  }
  return { starts, done };
}

describe('rapid repeated SIGKILLs with jobs leased ahead (sqlite)', () => {
  it(`${KILLS} kills: none lost, none completed twice, no crash counted for a job that never started`, { timeout: 120_000 }, async () => {
    const record = join(dir, 'recorded.log');
    const env = { DROVER_DATABASE_URL: join(dir, 'drover.db'), DROVER_BOOTSTRAP_ADMIN_KEY: KEY, RECORD_FILE: record };

    let node = await startChildNode({ config: CONFIG, env });
    const accepted = new Set<string>();
    for (let from = 0; from < JOBS; from += 500) {
      const res = await api(node.url, KEY, 'POST', '/v1/jobs', { jobs: Array.from({ length: 500 }, (_, i) => ({ handler: 'record', payload: { n: from + i } })) });
      expect(res.status).toBe(202);
      for (const job of res.body.jobs) accepted.add(job.id);
    }
    expect(accepted.size).toBe(JOBS);

    const started = Date.now();
    for (let kill = 1; kill <= KILLS; kill++) {
      // Kill soon after the node got going again: a few more jobs finished since the last kill.
      const before = recorded(record).done;
      await waitFor(() => recorded(record).done >= before + 20, { timeoutMs: 20_000, intervalMs: 2, message: `kill ${kill}: jobs running` });
      process.kill(node.pid, 'SIGKILL');
      await node.exited;
      node = await startChildNode({ config: CONFIG, env });
    }
    const killingMs = Date.now() - started;

    await waitFor(async () => {
      const counts = (await api(node.url, KEY, 'GET', '/v1/queues')).body.queues[0].counts;
      return counts.succeeded + counts.dead === JOBS;
    }, { timeoutMs: 60_000, intervalMs: 50, message: 'every job finished' });
    process.kill(node.pid, 'SIGTERM');
    expect(await node.exited).toEqual({ code: 0, signal: null });

    const { starts } = recorded(record);
    const db = new Database(join(dir, 'drover.db'), { readonly: true });
    try {
      const jobs = db.prepare('SELECT id, state, dead_reason, crashes, attempts FROM jobs').all() as Array<{ id: number; state: string; dead_reason: string | null; crashes: number; attempts: number }>;
      // None lost: every accepted job is in the store and finished.
      expect(new Set(jobs.map((j) => String(j.id)))).toEqual(accepted);
      expect(jobs.filter((j) => j.state !== 'succeeded' && j.state !== 'dead')).toEqual([]);
      // None completed twice.
      const succeeded = db.prepare("SELECT job_id, count(*) AS n FROM attempts WHERE outcome = 'succeeded' GROUP BY job_id").all() as Array<{ job_id: number; n: number }>;
      expect(succeeded.filter((row) => row.n !== 1)).toEqual([]);
      expect(succeeded.length).toBe(jobs.filter((j) => j.state === 'succeeded').length);

      // A crash is counted only for a started handler. The store records the
      // start just before the handler writes its line, so a kill in between
      // may count one crash the record does not show: at most one per slot per kill.
      const excess = jobs.map((j) => ({ id: j.id, crashes: j.crashes, starts: starts.get(String(j.id)) ?? 0 })).filter((j) => j.crashes > j.starts);
      expect(excess.filter((j) => j.crashes - j.starts > 1)).toEqual([]);
      expect(excess.length).toBeLessThanOrEqual(KILLS * CONCURRENCY);
      // No job dead as poison without a started attempt.
      for (const job of jobs.filter((j) => j.dead_reason === 'poison')) {
        expect(job.crashes).toBeGreaterThanOrEqual(POISON_AFTER);
        expect(starts.get(String(job.id)) ?? 0, `poisoned job ${job.id} started`).toBeGreaterThanOrEqual(POISON_AFTER - 1);
      }
      expect(jobs.filter((j) => j.state === 'dead' && j.dead_reason !== 'poison')).toEqual([]);

      // The faults really happened: kills caught handlers running, and caught
      // many more jobs leased ahead and not started (handed back at restart).
      const outcomes = Object.fromEntries((db.prepare('SELECT outcome, count(*) AS n FROM attempts GROUP BY outcome').all() as Array<{ outcome: string; n: number }>).map((r) => [r.outcome, r.n]));
      expect(outcomes.crashed ?? 0).toBeGreaterThan(0);
      expect(outcomes.released ?? 0).toBeGreaterThan(KILLS * CONCURRENCY);
      console.log(`rapid kills: ${KILLS} kills in ${killingMs} ms; attempts by outcome ${JSON.stringify(outcomes)}; poisoned ${jobs.filter((j) => j.dead_reason === 'poison').length}; crashes without a recorded start ${excess.length}`);
    } finally {
      db.close();
    }
  });
});
