/**
 * What several nodes must agree on: a cron tick runs once cluster-wide, and a
 * concurrency key's limit and a dispatch rate limit hold across nodes, not per
 * node.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { api, killAllChildren, type ChildNode } from '../helpers/child-node.js';
import { waitFor } from '../helpers/wait-for.js';
import { createCluster, KEY, type Cluster } from './cluster.js';
import { finishedAttempts } from '../helpers/pg-attempts.js';

let cluster: Cluster;
beforeAll(async () => {
  cluster = await createCluster();
});
afterEach(async () => {
  // A test that failed half-way must not leave its nodes working for the next one.
  await killAllChildren();
});
afterAll(async () => {
  await cluster?.close();
});

describe('several nodes on one store', () => {
  it('run each cron tick once cluster-wide', { timeout: 60_000 }, async () => {
    const nodes = await Promise.all([cluster.start('cron-a', { CRON: '1' }), cluster.start('cron-b', { CRON: '1' })]);
    // Both nodes fire every tick; the tick's idempotency key lets one job in.
    await waitFor(async () => (await cluster.query('SELECT DISTINCT tick_at FROM $schema.ticks')).length >= 4, {
      timeoutMs: 30_000,
      message: 'four ticks ran',
    });
    for (const node of nodes) process.kill(node.pid, 'SIGTERM');
    for (const node of nodes) expect(await node.exited).toEqual({ code: 0, signal: null });

    const perTick = await cluster.query<{ idempotency_key: string; n: number }>(
      "SELECT idempotency_key, count(*)::int AS n FROM $schema.jobs WHERE handler = 'tick' GROUP BY idempotency_key",
    );
    expect(perTick.length).toBeGreaterThanOrEqual(4);
    expect(perTick.every((t) => t.n === 1)).toBe(true);
    const runs = await cluster.query<{ tick_at: string; n: number }>('SELECT tick_at, count(*)::int AS n FROM $schema.ticks GROUP BY tick_at');
    expect(runs.every((r) => r.n === 1)).toBe(true);
  });

  it('hold a concurrency key\'s limit across nodes', { timeout: 60_000 }, async () => {
    const keys = ['k1', 'k2', 'k3', 'k4'];
    await cluster.query(`INSERT INTO $schema.key_load (k) SELECT unnest($1::text[])`, [keys]);
    const nodes = await Promise.all([cluster.start('keyed-a'), cluster.start('keyed-b')]);
    const jobs = Array.from({ length: 200 }, (_, i) => ({ handler: 'keyed', payload: { k: keys[i % keys.length] } }));
    await Promise.all([cluster.enqueue(nodes[0]!, jobs.slice(0, 100)), cluster.enqueue(nodes[1]!, jobs.slice(100))]);
    await waitFor(async () => {
      const [row] = await cluster.query<{ n: number }>("SELECT count(*)::int AS n FROM $schema.jobs WHERE handler = 'keyed' AND state = 'succeeded'");
      return row!.n === 200;
    }, { timeoutMs: 45_000, intervalMs: 50, message: 'all keyed jobs succeeded' });

    const load = await cluster.query<{ k: string; peak: number; runs: number }>('SELECT k, peak, runs FROM $schema.key_load ORDER BY k');
    expect(load.map((l) => l.runs)).toEqual([50, 50, 50, 50]);
    for (const l of load) expect(l.peak, `key ${l.k}`).toBeLessThanOrEqual(2);
    // The limit was reached (two at once), and both nodes ran keyed jobs.
    expect(Math.max(...load.map((l) => l.peak))).toBe(2);
    const workers = await cluster.query<{ worker_id: string }>(
      `SELECT DISTINCT a.worker_id FROM ${finishedAttempts('$schema')} JOIN $schema.jobs j ON j.id = a.job_id WHERE j.handler = 'keyed' AND a.outcome = 'succeeded'`,
    );
    expect(workers.map((w) => w.worker_id).sort()).toEqual(['keyed-a', 'keyed-b']);

    for (const node of nodes) process.kill(node.pid, 'SIGTERM');
    for (const node of nodes) expect(await node.exited).toEqual({ code: 0, signal: null });
  });

  it('hold a dispatch rate limit across nodes', { timeout: 60_000 }, async () => {
    const nodes = await Promise.all([cluster.start('rate-a'), cluster.start('rate-b')]);
    const jobs = Array.from({ length: 20 }, () => ({ handler: 'limited' }));
    await Promise.all([cluster.enqueue(nodes[0]!, jobs.slice(0, 10)), cluster.enqueue(nodes[1]!, jobs.slice(10))]);
    // Five a minute between them: five run, fifteen wait for the window, unspent.
    const states = async () =>
      Object.fromEntries(
        (await cluster.query<{ state: string; n: number }>("SELECT state, count(*)::int AS n FROM $schema.jobs WHERE handler = 'limited' GROUP BY state")).map((r) => [r.state, r.n]),
      );
    await waitFor(async () => {
      const by = await states();
      return by.succeeded === 5 && by.scheduled === 15;
    }, { timeoutMs: 30_000, intervalMs: 50, message: 'five limited jobs ran and fifteen wait' });

    const [ran] = await cluster.query<{ n: number }>("SELECT count(*)::int AS n FROM $schema.side_effects s JOIN $schema.jobs j ON j.id = s.job_id WHERE j.handler = 'limited'");
    expect(ran!.n).toBe(5);
    const [spent] = await cluster.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${finishedAttempts('$schema')} JOIN $schema.jobs j ON j.id = a.job_id WHERE j.handler = 'limited' AND a.outcome <> 'released'`,
    );
    expect(spent!.n).toBe(5);
    const [due] = await cluster.query<{ at: string }>("SELECT min(run_at)::text AS at FROM $schema.jobs WHERE handler = 'limited' AND state = 'scheduled'");
    const [firstStart] = await cluster.query<{ at: string }>(
      `SELECT min(a.started_at)::text AS at FROM ${finishedAttempts('$schema')} JOIN $schema.jobs j ON j.id = a.job_id WHERE j.handler = 'limited' AND a.outcome = 'succeeded'`,
    );
    // They come due when the oldest start leaves the window, a minute after it.
    expect(Number(due!.at)).toBeGreaterThanOrEqual(Number(firstStart!.at) + 60_000 - 1_000);

    for (const node of nodes) process.kill(node.pid, 'SIGTERM');
    for (const node of nodes) expect(await node.exited).toEqual({ code: 0, signal: null });
  });

  it('agree on quarantine: failures on any node count, every node holds, one reset frees them all', { timeout: 60_000 }, async () => {
    const nodes = await Promise.all([cluster.start('q-a'), cluster.start('q-b')]);
    const quarantined = async (node: ChildNode) =>
      ((await api(node.url, KEY, 'GET', '/v1/handlers')).body.handlers as Array<{ name: string; quarantined: boolean }>).find((h) => h.name === 'flaky')!.quarantined;
    // Four failures between two nodes that each run one job at a time: neither alone reaches four.
    await cluster.enqueue(nodes[0]!, Array.from({ length: 4 }, () => ({ handler: 'flaky' })));
    await waitFor(async () => (await quarantined(nodes[0]!)) && (await quarantined(nodes[1]!)), {
      timeoutMs: 30_000,
      intervalMs: 100,
      message: 'both nodes see flaky quarantined',
    });
    const [failed] = await cluster.query<{ n: number }>("SELECT count(*)::int AS n FROM $schema.jobs WHERE handler = 'flaky' AND state = 'dead'");
    expect(failed!.n).toBe(4);

    // Work for it now waits on every node, attempts unspent.
    const [held] = await cluster.enqueue(nodes[1]!, [{ handler: 'flaky' }]);
    const attempts = async () => (await cluster.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${finishedAttempts('$schema')} WHERE job_id = $1`, [held]))[0]!.n;
    expect(await attempts()).toBe(0);

    // A reset on one node lets both go: the waiting job runs (and fails, its only attempt).
    expect((await api(nodes[1]!.url, KEY, 'POST', '/v1/handlers/flaky/reset')).status).toBe(200);
    await waitFor(async () => !(await quarantined(nodes[0]!)) && !(await quarantined(nodes[1]!)), { timeoutMs: 30_000, intervalMs: 100, message: 'both nodes see the reset' });
    await waitFor(async () => (await attempts()) === 1, { timeoutMs: 30_000, intervalMs: 50, message: 'the held job ran after the reset' });

    for (const node of nodes) process.kill(node.pid, 'SIGTERM');
    for (const node of nodes) expect(await node.exited).toEqual({ code: 0, signal: null });
  });
});
