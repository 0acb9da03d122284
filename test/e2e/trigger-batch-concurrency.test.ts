/**
 * PostgreSQL, two nodes on one schema ingesting events of the same batch
 * key at once: every accepted event lands in exactly one batch, no batch
 * holds more than maxSize, and the open batch is shared by both nodes (the
 * group row lock in store/postgres/trigger-groups.ts serialises them).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { dropPgSchema, PG_URL, startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';

const schema = `drover_tb_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
const nodes: TestNode[] = [];
afterAll(async () => {
  await Promise.all(nodes.map((n) => n.close()));
  await dropPgSchema(schema);
});

let now = 1_800_000_000_000;
const batches: Array<{ jobId: string; ids: string[] }> = [];

function startNode(): Promise<TestNode> {
  return startTestNode(
    {
      databaseUrl: PG_URL,
      postgres: { schema, poolMax: 6 },
      server: { port: 0 }, // a node id of its own per node (start-node.ts nodeWorkerId)
      handlers: [
        {
          name: 'collect',
          on: { event: 'row.added', batch: { key: 'data.table', maxSize: 10, maxWaitMs: 60_000 } },
          run(ctx: any) {
            batches.push({ jobId: ctx.job.id, ids: ctx.job.payload.events.map((e: any) => e.id) });
          },
        },
      ],
    },
    { clock: () => now },
  );
}

describe('batch on PostgreSQL with two nodes', () => {
  it('puts every event of one key in exactly one batch when both nodes ingest at once', async () => {
    nodes.push(await startNode());
    nodes.push(await startNode());
    const sent: string[] = [];
    // 8 producers per node, 12 events each, one event per request: 192 events racing for one group.
    const producer = async (n: TestNode, who: string) => {
      for (let i = 0; i < 12; i++) {
        const id = `${who}-${i}`;
        const res = await n.request('POST', '/v1/events', { name: 'row.added', data: { table: 'shared' }, id });
        expect(res.status, JSON.stringify(res.body)).toBe(202);
        sent.push(id);
      }
    };
    await Promise.all(nodes.flatMap((n, k) => Array.from({ length: 8 }, (_, p) => producer(n, `n${k}p${p}`))));
    expect(sent).toHaveLength(192);

    // 19 full batches ran at once; the last 2 events wait for the window.
    await waitFor(() => batches.length === 19, { timeoutMs: 20_000, message: '19 full batches ran' });
    now += 60_000;
    await nodes[0]!.store.stageDue();
    nodes[0]!.runtime.dispatcher.wake();
    await waitFor(() => batches.length === 20, { message: 'the last, timed batch ran' });

    const all = batches.flatMap((b) => b.ids);
    expect(new Set(all).size).toBe(all.length); // none twice
    expect(all.sort()).toEqual([...sent].sort()); // none lost
    expect(batches.every((b) => b.ids.length <= 10)).toBe(true);
    expect(batches.filter((b) => b.ids.length === 10)).toHaveLength(19);
    expect(new Set(batches.map((b) => b.jobId)).size).toBe(20);
  });
});
