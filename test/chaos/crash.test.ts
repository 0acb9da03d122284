/**
 * Crash safety: SIGKILL the runtime mid-flight, several times, and check that
 * nothing accepted is lost, each job has exactly one succeeded attempt, and a
 * job ran twice only when it was running at the moment of a kill.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { api, killAllChildren, startChildNode } from '../helpers/child-node.js';
import { waitFor } from '../helpers/wait-for.js';

const CONFIG = fileURLToPath(new URL('../fixtures/crash.config.mjs', import.meta.url));
const KEY = 'drv_crash_test_admin_key_0123456789';
const JOBS = 2_000;
const KILLS = 3;
const CONCURRENCY = 10;
/** The dispatcher's default lease-ahead for a quick handler: max(concurrency, 64). */
const LEASE_AHEAD = 64;

const dir = mkdtempSync(join(tmpdir(), 'drover-crash-'));
afterAll(async () => {
  await killAllChildren();
  rmSync(dir, { recursive: true, force: true });
});

function recorded(file: string): string[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter((line) => /^\d+$/.test(line));
}

describe('crash safety', () => {
  it(`loses nothing across ${KILLS} SIGKILLs of a node running ${JOBS} jobs`, { timeout: 120_000 }, async () => {
    const record = join(dir, 'recorded.log');
    const env = { DROVER_DATABASE_URL: join(dir, 'drover.db'), DROVER_BOOTSTRAP_ADMIN_KEY: KEY, RECORD_FILE: record };

    let node = await startChildNode({ config: CONFIG, env });
    const accepted = new Set<string>();
    for (let batch = 0; batch < JOBS / 1000; batch++) {
      const res = await api(node.url, KEY, 'POST', '/v1/jobs', { jobs: Array.from({ length: 1000 }, (_, i) => ({ handler: 'record', payload: { n: batch * 1000 + i } })) });
      expect(res.status).toBe(202);
      for (const job of res.body.jobs) accepted.add(job.id);
    }
    expect(accepted.size).toBe(JOBS);

    for (let kill = 1; kill <= KILLS; kill++) {
      // Kill after a further slice of the work has been done, while jobs are running.
      const target = Math.floor((JOBS * kill) / (KILLS + 1));
      await waitFor(() => recorded(record).length >= target, { timeoutMs: 30_000, intervalMs: 2, message: `${target} jobs recorded` });
      process.kill(node.pid, 'SIGKILL');
      await node.exited;
      node = await startChildNode({ config: CONFIG, env });
    }

    await waitFor(async () => {
      const res = await api(node.url, KEY, 'GET', '/v1/queues');
      return res.body.queues[0].counts.succeeded === JOBS;
    }, { timeoutMs: 60_000, intervalMs: 50, message: 'every job succeeded' });
    process.kill(node.pid, 'SIGTERM');
    expect(await node.exited).toEqual({ code: 0, signal: null });

    const db = new Database(join(dir, 'drover.db'), { readonly: true });
    try {
      const states = db.prepare('SELECT state, count(*) AS n FROM jobs GROUP BY state').all() as Array<{ state: string; n: number }>;
      expect(states).toEqual([{ state: 'succeeded', n: JOBS }]);
      const succeededAttempts = db.prepare("SELECT job_id, count(*) AS n FROM attempts WHERE outcome = 'succeeded' GROUP BY job_id").all() as Array<{ job_id: number; n: number }>;
      expect(succeededAttempts).toHaveLength(JOBS);
      expect(succeededAttempts.every((row) => row.n === 1)).toBe(true);

      // Every accepted job ran; a job ran more than once only if a kill caught it
      // before its outcome was durable: running, or finished with its completion
      // still waiting for the turn's group commit. A slot is freed when the
      // handler returns, so one turn can finish at most concurrency + lease-ahead
      // jobs of a handler before that commit; that bounds the re-runs per kill.
      const lines = recorded(record);
      const runs = new Map<string, number>();
      for (const id of lines) runs.set(id, (runs.get(id) ?? 0) + 1);
      for (const id of accepted) expect(runs.get(id) ?? 0, `job ${id} ran`).toBeGreaterThanOrEqual(1);
      const repeated = [...runs.entries()].filter(([, n]) => n > 1).map(([id]) => id);
      expect(repeated.length).toBeLessThanOrEqual(KILLS * (CONCURRENCY + LEASE_AHEAD));
      const crashed = new Set((db.prepare("SELECT DISTINCT job_id FROM attempts WHERE outcome = 'crashed'").all() as Array<{ job_id: number }>).map((r) => String(r.job_id)));
      // The kills did land mid-flight (otherwise this test proves nothing).
      expect(crashed.size).toBeGreaterThan(0);
      for (const id of repeated) expect(crashed.has(id), `job ${id} ran twice without being caught by a crash`).toBe(true);
    } finally {
      db.close();
    }
  });
});
