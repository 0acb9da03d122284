/**
 * PostgreSQL paths that fail the hard way, under real `drover start`
 * processes: a black hole (nothing forwarded, nothing closed: no RST), resets,
 * and backends killed by the server. Drover reaches PostgreSQL through a TCP
 * proxy written here (fault-proxy.ts); handlers record their runs through a
 * direct connection, so runs are counted while Drover's path is dead.
 *
 * Invariants: the node never hangs a request past a bound and never exits;
 * readiness says 503 naming the store while it is unreachable and 200 once it
 * answers; a node that cannot reach the store stops heartbeating, so a peer
 * recovers its jobs; after healing every accepted job succeeds exactly once
 * and none stays running.
 *
 * Deadlines are short in the fixture (1 s statement, 1.5 s query, 1 s
 * connect, 250 ms heartbeat, 1.5 s dead-node window) to keep this bounded.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait-for.js';
import { alive, assertPostgres, call, cleanUp, count, DEAD_NODE_MS, endPool, enqueue, expectAllSucceededOnce, freshSchema, PG_URL, proxied, ready, rows, startNode } from './pg-faults.js';
import { finishedAttempts } from '../helpers/pg-attempts.js';
import { parseExposition } from '../obs/exposition.js';

beforeAll(assertPostgres);
afterEach(cleanUp);
afterAll(endPool);

describe('PostgreSQL path faults', () => {
  it('black hole under a running node: 503s within a bound, never a hang, no crash; healed, every job finishes once', { timeout: 60_000 }, async () => {
    await freshSchema();
    const { proxy, url } = await proxied();
    const node = await startNode('node-a', url, { JOB_MS: '50' });
    await waitFor(async () => (await ready(node)) === 200, { timeoutMs: 10_000, message: 'node-a ready' });

    const ids = await enqueue(node, 300);
    await waitFor(async () => (await count('SELECT count(DISTINCT job_id)::int AS n FROM $schema.side_effects')) >= 30, {
      timeoutMs: 15_000,
      message: 'some jobs ran',
    });

    proxy.blackhole();
    const lostAt = Date.now();
    await waitFor(async () => (await ready(node)) === 503, { timeoutMs: 8_000, intervalMs: 50, message: '/health/ready is 503' });
    const notReadyMs = Date.now() - lostAt;
    const probe = await call(node, 'GET', '/health/ready');
    expect(probe.body.checks.store.ok).toBe(false);
    expect(probe.body.checks.store.detail).toMatch(/store unreachable|PostgreSQL is unavailable/);

    // Intake, a read and a key-checked route: each refused at once, never a hang.
    for (const [method, path, body] of [
      ['POST', '/v1/jobs', { handler: 'record', payload: {} }],
      ['POST', '/v1/events', { name: 'x', data: {} }],
      ['GET', '/v1/jobs', undefined],
    ] as const) {
      const refused = await call(node, method, path, body, 5_000);
      expect(refused.status, `${method} ${path}`).toBe(503);
      expect(refused.ms, `${method} ${path} answered within 3 s`).toBeLessThan(3_000);
      expect(refused.headers.get('content-type')).toMatch(/application\/problem\+json/);
      expect(refused.body.type).toBe('https://drover.dev/problems/store-unavailable');
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    }
    expect((await call(node, 'GET', '/health/live')).status).toBe(200);

    // Hold the outage past the heartbeat window, so the node's own beats have failed.
    await waitFor(() => Date.now() - lostAt > DEAD_NODE_MS * 2, { timeoutMs: 10_000, intervalMs: 50 });
    expect(proxy.blackholed).toBe(true);
    expect(alive(node)).toBe(true);

    // What the node gave up on arrives 2 s after the path is back, as TCP's backed-off retransmissions
    // would bring it: the lease sent into the hole commits after the node undid it. Its jobs must not wait
    // out their lease (35 s) for a node that does not know them (uncertain-leases.ts).
    proxy.heal({ lateMs: 2_000 });
    const healedAt = Date.now();
    await waitFor(async () => (await ready(node)) === 200, { timeoutMs: 15_000, intervalMs: 50, message: '/health/ready is 200 again' });
    const readyAgainMs = Date.now() - healedAt;
    await expectAllSucceededOnce(ids, 30_000);
    // The node counted each success once, those whose answer the hole swallowed included (their
    // retried settle finds its own earlier try committed, settle-batch.ts), and refused none of them.
    const succeeded = await count("SELECT count(*)::int AS n FROM $schema.jobs WHERE state = 'succeeded'");
    const scrape = async () => parseExposition(await (await fetch(node.url + '/metrics', { signal: AbortSignal.timeout(5_000) })).text());
    const counted = async () => (await scrape()).value('drover_jobs_completed_total', { handler: 'record', outcome: 'succeeded' });
    // The count follows the commit by the answer's way back: wait for it (bounded), then compare exactly.
    await waitFor(async () => (await counted()) >= succeeded, { timeoutMs: 5_000 }).catch(() => undefined);
    expect(await counted(), 'successes counted once each').toBe(succeeded);
    expect((await scrape()).find('drover_lease_conflicts_total', { op: 'complete' }).reduce((n, s) => n + s.value, 0), 'completions refused as stale').toBe(0);
    expect((await call(node, 'POST', '/v1/jobs', { handler: 'record', payload: {} })).status).toBe(202);
    expect(alive(node)).toBe(true);
    console.log(`[pg-blackhole] store lost -> readiness 503: ${notReadyMs} ms; healed -> readiness 200: ${readyAgainMs} ms`);
  });

  it('two nodes, one black-holed: the other recovers its jobs within the liveness window; healed, it carries on, nothing completed twice', { timeout: 60_000 }, async () => {
    await freshSchema();
    const { proxy, url } = await proxied();
    const a = await startNode('node-a', url, { JOB_MS: '400' });
    const b = await startNode('node-b', PG_URL, { JOB_MS: '400' });
    // B judges peers only after heartbeating through a whole window itself.
    await waitFor(
      async () => {
        const nodes = await rows<{ node_id: string; started_at: number }>('SELECT node_id, started_at FROM $schema.nodes');
        return nodes.length === 2 && nodes.every((n) => Date.now() - Number(n.started_at) > DEAD_NODE_MS);
      },
      { timeoutMs: 15_000, intervalMs: 50, message: 'both nodes registered for a liveness window' },
    );

    const ids = await enqueue(a, 200);
    await waitFor(async () => (await count("SELECT count(*)::int AS n FROM $schema.jobs WHERE state = 'running' AND worker_id = 'node-a'")) >= 4, {
      timeoutMs: 15_000,
      intervalMs: 10,
      message: 'node-a holds running jobs',
    });

    proxy.blackhole();
    const lostAt = Date.now();
    const held = (await rows<{ id: string }>("SELECT id::text AS id FROM $schema.jobs WHERE state = 'running' AND worker_id = 'node-a'")).map((r) => r.id);
    expect(held.length).toBeGreaterThan(0);
    // Every job node-a held when it went silent runs again on node-b (or has finished there).
    await waitFor(
      async () =>
        (await count(
          `SELECT count(*)::int AS n FROM $schema.jobs WHERE id = ANY($1::bigint[]) AND worker_id = 'node-b' AND state IN ('running', 'succeeded')`,
          [held],
        )) === held.length,
      { timeoutMs: 15_000, intervalMs: 20, message: "node-a's jobs running on node-b" },
    );
    const recoveredMs = Date.now() - lostAt;
    expect(recoveredMs).toBeLessThan(DEAD_NODE_MS + 5_000);
    // Taken by dead-node detection, not by lease expiry: node-a's attempts end `crashed` (its
    // handler had started) or `released` (leased ahead, or its start mark never reached the store).
    expect(await count("SELECT count(*)::int AS n FROM $schema.attempts WHERE worker_id = 'node-a' AND outcome IN ('crashed', 'released')")).toBeGreaterThan(0);
    expect(await count("SELECT count(*)::int AS n FROM $schema.attempts WHERE outcome = 'lease_expired'")).toBe(0);

    await waitFor(() => Date.now() - lostAt > 4_000, { timeoutMs: 10_000, intervalMs: 50 });
    expect(alive(a)).toBe(true);
    proxy.heal();
    const healedAt = Date.now();
    await waitFor(async () => (await ready(a)) === 200, { timeoutMs: 15_000, intervalMs: 50, message: 'node-a ready again' });
    // node-a registers again and leases new work.
    const more = await enqueue(b, 100);
    await expectAllSucceededOnce([...ids, ...more], 40_000);
    expect(
      await count(`SELECT count(*)::int AS n FROM ${finishedAttempts('$schema')} WHERE worker_id = 'node-a' AND outcome = 'succeeded' AND started_at > $1`, [healedAt]),
      'node-a carried on leasing after healing',
    ).toBeGreaterThan(0);
    expect(alive(a) && alive(b)).toBe(true);
    console.log(`[pg-blackhole] node-a silent -> its ${held.length} jobs running on node-b: ${recoveredMs} ms`);
  });

  it('connections reset and backends terminated under load: the process keeps running, counts the errors and recovers', { timeout: 60_000 }, async () => {
    const schema = await freshSchema();
    const { proxy, url } = await proxied();
    const node = await startNode('node-a', url, { JOB_MS: '20' });
    await waitFor(async () => (await ready(node)) === 200, { timeoutMs: 10_000, message: 'node-a ready' });
    const ids = await enqueue(node, 200);
    // Intake keeps transactions open while connections die under it.
    const intake = (async () => {
      const accepted: string[] = [];
      for (let i = 0; i < 40; i++) {
        const res = await call(node, 'POST', '/v1/jobs', { handler: 'record', payload: { extra: i } }).catch(() => null);
        if (res?.status === 202) accepted.push(res.body.id ?? res.body.jobs?.[0]?.id);
      }
      return accepted;
    })();
    let terminated = 0;
    let reset = 0;
    for (let round = 0; round < 6; round++) {
      if (round % 2 === 0) reset += proxy.reset();
      else {
        terminated += await count("SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = $1", [`drover/${schema}`]);
      }
      // Pacing the faults (not waiting for a condition): let the node reconnect and get busy in between.
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    expect(reset + terminated, 'connections were really killed').toBeGreaterThan(0);
    const extra = (await intake).filter(Boolean);
    await waitFor(async () => (await ready(node)) === 200, { timeoutMs: 15_000, intervalMs: 50, message: 'ready again' });
    await expectAllSucceededOnce([...ids, ...extra], 30_000);
    expect(alive(node), `node exited: ${node.stderr.join('')}`).toBe(true);
    const metrics = await (await fetch(`${node.url}/metrics`)).text();
    const errors = [...metrics.matchAll(/^drover_store_connection_errors_total\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
    expect(errors).toBeGreaterThan(0);
    expect(node.stdout.some((line) => line.includes('store connection failed and was discarded'))).toBe(true);
  });
});
