/**
 * Fencing across nodes: a node frozen (SIGSTOP) in the middle of a job, past
 * the dead-node window, is declared dead; a peer reclaims and completes the
 * job. When the frozen node resumes (SIGCONT) its handler finishes and it
 * tries to complete with its old lease token: the store refuses, and the job
 * keeps the peer's outcome. The resumed node learns it was declared dead,
 * registers again and carries on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait-for.js';
import { createCluster, waitUntilSettled, type Cluster } from './cluster.js';
import { finishedAttempts } from '../helpers/pg-attempts.js';

let cluster: Cluster;
beforeAll(async () => {
  cluster = await createCluster();
});
afterAll(async () => {
  await cluster?.close();
});

describe('fencing a frozen node', () => {
  it('refuses the late completion of a node frozen past its heartbeat window; the job keeps the outcome its peer recorded', { timeout: 90_000 }, async () => {
    const frozen = await cluster.start('node-frozen');
    const [id] = await cluster.enqueue(frozen, [{ handler: 'fence' }]);
    await waitFor(async () => (await cluster.query("SELECT 1 FROM $schema.fence_log WHERE job_id = $1 AND phase = 'started'", [id])).length > 0, {
      timeoutMs: 20_000,
      message: 'the frozen node started the job',
    });
    process.kill(frozen.pid, 'SIGSTOP');

    const peer = await cluster.start('node-peer');
    await waitUntilSettled(cluster, ['node-peer'], 3_000);
    await waitFor(async () => (await cluster.query("SELECT 1 FROM $schema.jobs WHERE id = $1 AND state = 'succeeded'", [id])).length > 0, {
      timeoutMs: 30_000,
      message: 'the peer reclaimed and completed the job',
    });
    const [settled] = await cluster.query('SELECT * FROM $schema.jobs WHERE id = $1', [id]);
    const attemptsSql = `SELECT attempt, worker_id, outcome FROM ${finishedAttempts('$schema')} WHERE job_id = $1 ORDER BY attempt`;
    const attempts = await cluster.query(attemptsSql, [id]);
    expect(attempts).toEqual([
      { attempt: 1, worker_id: 'node-frozen', outcome: 'crashed' },
      { attempt: 2, worker_id: 'node-peer', outcome: 'succeeded' },
    ]);
    expect(settled.result).toEqual({ node: 'node-peer', attempt: 2 });

    process.kill(frozen.pid, 'SIGCONT');
    // The frozen node's handler runs to its end, and its completion is refused as stale.
    await waitFor(async () => (await cluster.query("SELECT 1 FROM $schema.fence_log WHERE job_id = $1 AND attempt = 1 AND phase = 'finished'", [id])).length > 0, {
      timeoutMs: 20_000,
      message: 'the resumed node finished its run',
    });
    const logLines = () => frozen.stdout.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>);
    const staleLine = () => logLines().find((l) => l.job_id === id && typeof l.msg === 'string' && l.msg.startsWith('lease was lost'));
    await waitFor(() => staleLine(), { timeoutMs: 20_000, message: 'the resumed node reported its completion as stale' });
    expect(staleLine()).toMatchObject({ op: 'complete', attempt: 1 });

    // Nothing changed: same row, same attempts.
    expect((await cluster.query('SELECT * FROM $schema.jobs WHERE id = $1', [id]))[0]).toEqual(settled);
    expect(await cluster.query(attemptsSql, [id])).toEqual(attempts);

    // The resumed node noticed it had been declared dead and is back in the registry, working.
    await waitFor(async () => (await cluster.query("SELECT 1 FROM $schema.nodes WHERE node_id = 'node-frozen'")).length > 0, {
      timeoutMs: 10_000,
      message: 'the resumed node registered again',
    });
    expect(logLines().some((l) => typeof l.msg === 'string' && l.msg.startsWith('peers declared this node dead'))).toBe(true);
    const [next] = await cluster.enqueue(frozen, [{ handler: 'fence', payload: { again: true } }]);
    await waitFor(async () => (await cluster.query("SELECT 1 FROM $schema.jobs WHERE id = $1 AND state = 'succeeded'", [next])).length > 0, {
      timeoutMs: 20_000,
      message: 'the cluster keeps working',
    });

    process.kill(peer.pid, 'SIGTERM');
    process.kill(frozen.pid, 'SIGTERM');
    expect(await peer.exited).toEqual({ code: 0, signal: null });
    expect(await frozen.exited).toEqual({ code: 0, signal: null });
  });
});
