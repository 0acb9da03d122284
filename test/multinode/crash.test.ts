/**
 * Multi-node crash safety: three `drover start` processes share one
 * PostgreSQL schema and 5,000 jobs; one is SIGKILLed mid-flight. Every job
 * must succeed exactly once (one succeeded attempt), run again only if it was
 * running on the killed node, and the killed node's jobs must be reclaimed by
 * the survivors' dead-node detection within 5 s (default settings), long
 * before their leases (5 min + 30 s) would expire.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildNode } from '../helpers/child-node.js';
import { waitFor } from '../helpers/wait-for.js';
import { createCluster, waitUntilSettled, type Cluster } from './cluster.js';
import { completedTwice } from '../helpers/pg-attempts.js';

const JOBS = 5_000;
/** Default `cluster.deadNodeMs`: survivors judge peers only after heartbeating this long themselves. */
const DEAD_NODE_MS = 3_000;

let cluster: Cluster;
beforeAll(async () => {
  cluster = await createCluster();
});
afterAll(async () => {
  await cluster?.close();
});

describe('multi-node crash safety', () => {
  it(`three nodes, ${JOBS} jobs, one SIGKILLed mid-flight: nothing lost, nothing completed twice, reclaimed within 5 s`, { timeout: 120_000 }, async () => {
    const a = await cluster.start('node-a');
    const [b, c] = await Promise.all([cluster.start('node-b'), cluster.start('node-c')]);
    await waitUntilSettled(cluster, ['node-a', 'node-c'], DEAD_NODE_MS);

    const accepted = await cluster.enqueue(a, Array.from({ length: JOBS }, (_, n) => ({ handler: 'record', payload: { n } })));
    expect(new Set(accepted).size).toBe(JOBS);

    // Kill node-b once a third of the work is done and it is holding jobs.
    await waitFor(async () => {
      const [done] = await cluster.query<{ n: number }>('SELECT count(*)::int AS n FROM $schema.side_effects');
      const [held] = await cluster.query<{ n: number }>("SELECT count(*)::int AS n FROM $schema.jobs WHERE state = 'running' AND worker_id = 'node-b'");
      return done!.n >= JOBS / 3 && held!.n > 0;
    }, { timeoutMs: 60_000, intervalMs: 2, message: 'a third of the jobs done with node-b holding some' });
    const killedAt = Date.now();
    process.kill(b.pid, 'SIGKILL');
    expect(await b.exited).toMatchObject({ signal: 'SIGKILL' });

    await waitFor(async () => {
      const [row] = await cluster.query<{ n: number }>("SELECT count(*)::int AS n FROM $schema.jobs WHERE state = 'succeeded'");
      return row!.n === JOBS;
    }, { timeoutMs: 60_000, intervalMs: 50, message: `all ${JOBS} jobs succeeded` });

    const states = await cluster.query('SELECT state, count(*)::int AS n FROM $schema.jobs GROUP BY state');
    expect(states).toEqual([{ state: 'succeeded', n: JOBS }]);
    const twice = await cluster.query(completedTwice('$schema'));
    expect(twice).toEqual([]);

    // The kill landed mid-flight, and only on node-b's jobs.
    const crashed = await cluster.query<{ job_id: number; worker_id: string; ended_at: number }>(
      "SELECT job_id, worker_id, ended_at FROM $schema.attempts WHERE outcome = 'crashed'",
    );
    expect(crashed.length).toBeGreaterThan(0);
    expect(new Set(crashed.map((r) => r.worker_id))).toEqual(new Set(['node-b']));
    // Reclaimed by dead-node detection, not by lease expiry: within 5 s of the kill.
    const reclaimedAfterMs = Math.max(...crashed.map((r) => Number(r.ended_at))) - killedAt;
    expect(reclaimedAfterMs).toBeLessThan(5_000);
    const leaseExpired = await cluster.query("SELECT 1 FROM $schema.attempts WHERE outcome = 'lease_expired'");
    expect(leaseExpired).toEqual([]);

    // Every job ran; a job ran more than once only if the kill caught it running on node-b.
    const runs = await cluster.query<{ job_id: number; n: number }>('SELECT job_id, count(*)::int AS n FROM $schema.side_effects GROUP BY job_id');
    expect(runs).toHaveLength(JOBS);
    const crashedIds = new Set(crashed.map((r) => String(r.job_id)));
    for (const row of runs.filter((r) => r.n > 1)) {
      expect(crashedIds.has(String(row.job_id)), `job ${row.job_id} ran ${row.n} times without being caught by the kill`).toBe(true);
    }
    // node-b is gone from the registry; the survivors are still there.
    const nodes = await cluster.query<{ node_id: string }>('SELECT node_id FROM $schema.nodes ORDER BY node_id');
    expect(nodes.map((n) => n.node_id)).toEqual(['node-a', 'node-c']);

    for (const node of [a, c] as ChildNode[]) process.kill(node.pid, 'SIGTERM');
    expect(await a.exited).toEqual({ code: 0, signal: null });
    expect(await c.exited).toEqual({ code: 0, signal: null });
    // A graceful stop deregisters.
    expect(await cluster.query('SELECT node_id FROM $schema.nodes')).toEqual([]);
  });
});
