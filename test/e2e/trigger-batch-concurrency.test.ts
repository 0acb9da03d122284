/**
 * PostgreSQL, two nodes on one schema ingesting events of one group at
 * once (the group row lock in store/postgres/trigger-groups.ts serialises
 * them): every accepted event lands in exactly one batch and no batch holds
 * more than maxSize; every debounced event joins the one open window; every
 * throttled event gets a slot of its own, none shared, none skipped.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
        { name: 'settle', on: { event: 'doc.edited', debounce: { windowMs: 60_000 } }, run() {} },
        { name: 'pace', on: { event: 'mail.send', throttle: { limit: 4, periodMs: 1_000 } }, run() {} },
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

/** 8 producers per node, each sending `count` events one request at a time; the answers' jobs. */
async function race(event: (who: string, i: number) => { name: string; data?: unknown; id?: string }, count: number): Promise<any[]> {
  const answers: any[] = [];
  const producer = async (n: TestNode, who: string) => {
    for (let i = 0; i < count; i++) {
      const res = await n.request('POST', '/v1/events', event(who, i));
      expect(res.status, JSON.stringify(res.body)).toBe(202);
      answers.push(res.body.jobs[0]);
    }
  };
  await Promise.all(nodes.flatMap((n, k) => Array.from({ length: 8 }, (_, p) => producer(n, `n${k}p${p}`))));
  return answers;
}

describe('trigger controls on PostgreSQL with two nodes', () => {
  beforeAll(async () => {
    nodes.push(await startNode(), await startNode());
  });

  it('puts every event of one key in exactly one batch when both nodes ingest at once', async () => {
    // 192 events racing for one group.
    const answers = await race((who, i) => ({ name: 'row.added', data: { table: 'shared' }, id: `${who}-${i}` }), 12);
    expect(answers).toHaveLength(192);
    const sent = nodes.flatMap((_, k) => Array.from({ length: 8 }, (_, p) => Array.from({ length: 12 }, (_, i) => `n${k}p${p}-${i}`))).flat();

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
    expect(answers.filter((job) => job.trigger.merged === false)).toHaveLength(20);
  });

  it('debounces both nodes\' events into one window and gives each throttled event its own slot', async () => {
    const debounced = await race(() => ({ name: 'doc.edited', data: {} }), 6);
    expect(new Set(debounced.map((job) => job.id)).size).toBe(1);
    expect(debounced.filter((job) => job.trigger.merged === false)).toHaveLength(1);

    const t0 = now;
    const throttled = await race(() => ({ name: 'mail.send', data: {} }), 6);
    const slots = throttled.map((job) => Date.parse(job.runAt) - t0).sort((a, b) => a - b);
    expect(slots).toEqual(Array.from({ length: 96 }, (_, i) => i * 250));
  });
});
