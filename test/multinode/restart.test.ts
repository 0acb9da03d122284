/**
 * A node restarted under the same id (DROVER_NODE_ID) takes back the jobs its
 * previous process held at once, at start, with no peer needed; and a second
 * live process cannot take a node id that is in use. Nodes first started
 * together on an empty store create one admin key between them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChildNode } from '../helpers/child-node.js';
import { waitFor } from '../helpers/wait-for.js';
import { CONFIG, createCluster, KEY, PG_URL, type Cluster } from './cluster.js';

let cluster: Cluster;
beforeAll(async () => {
  cluster = await createCluster();
});
afterAll(async () => {
  await cluster?.close();
});

describe('restarting a node', () => {
  it('reclaims its previous incarnation\'s leases at start, and keeps a node id to one live process', { timeout: 60_000 }, async () => {
    const first = await cluster.start('solo');
    await cluster.enqueue(first, Array.from({ length: 50 }, () => ({ handler: 'fence' })));
    await waitFor(async () => (await cluster.query("SELECT 1 FROM $schema.jobs WHERE state = 'running'")).length > 0, {
      timeoutMs: 20_000,
      message: 'jobs running on the first process',
    });

    // The id is taken while its process lives.
    await expect(
      startChildNode({
        config: CONFIG,
        timeoutMs: 30_000,
        env: { DROVER_DATABASE_URL: PG_URL, DROVER_PG_SCHEMA: cluster.schema, DROVER_NODE_ID: 'solo', DROVER_BOOTSTRAP_ADMIN_KEY: KEY, SIDE_SCHEMA: cluster.schema },
      }),
    ).rejects.toThrow(/node id "solo" is in use/);

    process.kill(first.pid, 'SIGKILL');
    await first.exited;
    const held = await cluster.query<{ id: number }>("SELECT id FROM $schema.jobs WHERE state = 'running' AND worker_id = 'solo'");
    expect(held.length).toBeGreaterThan(0);

    const second = await cluster.start('solo');
    // No peer exists to detect a dead node: the restart itself took the jobs back.
    const crashed = await cluster.query<{ job_id: number }>("SELECT job_id FROM $schema.attempts WHERE outcome = 'crashed' AND worker_id = 'solo'");
    expect(crashed.map((r) => r.job_id).sort()).toEqual(held.map((r) => r.id).sort());
    expect(second.stdout.some((line) => line.includes('reclaimed jobs left running by a previous run of this node'))).toBe(true);
    await waitFor(async () => (await cluster.query("SELECT 1 FROM $schema.jobs WHERE state <> 'succeeded'")).length === 0, {
      timeoutMs: 30_000,
      message: 'every job succeeded',
    });
    process.kill(second.pid, 'SIGTERM');
    expect(await second.exited).toEqual({ code: 0, signal: null });
  });
});

describe('first start', () => {
  it('creates one admin key when several nodes start together on an empty store', { timeout: 60_000 }, async () => {
    const fresh = await createCluster();
    try {
      // No DROVER_BOOTSTRAP_ADMIN_KEY: a node that creates the first key prints it, once.
      const nodes = await Promise.all(['first-a', 'first-b', 'first-c'].map((id) => fresh.start(id, { DROVER_BOOTSTRAP_ADMIN_KEY: '' })));
      const printed = nodes.flatMap((node) => node.stdout.filter((line) => line.startsWith('drover admin key (shown once')));
      expect(printed).toHaveLength(1);
      const keys = await fresh.query<{ name: string; scopes: string }>('SELECT name FROM $schema.api_keys');
      expect(keys).toEqual([{ name: 'bootstrap-admin' }]);
      // And it works against every node.
      const secret = printed[0]!.split(': ').at(-1)!;
      for (const node of nodes) expect((await fetch(`${node.url}/v1/handlers`, { headers: { authorization: `Bearer ${secret}` } })).status).toBe(200);
      for (const node of nodes) process.kill(node.pid, 'SIGTERM');
      for (const node of nodes) expect(await node.exited).toEqual({ code: 0, signal: null });
    } finally {
      await fresh.close();
    }
  });
});
