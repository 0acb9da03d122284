/**
 * The fallback poll (every 2 s on a shared store; `runTask('poll')` here)
 * wakes only the handlers with queued jobs. A poll that woke every handler
 * made each idle lane busy for a lease's round trip, and a job enqueued then
 * was not leased by its own insert (Dispatcher.claimAtIntake): it took an
 * insert and a lease, the slowest 1 % of enqueue→start on PostgreSQL
 * (docs/benchmarks.md, "Issue 24, seventh pass"). Real PostgreSQL: only a
 * shared store runs the poll (a SQLite node hears every commit itself).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startTestNode, testEngine, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';

const nodes: TestNode[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.close();
});

const config = { handlers: [{ name: 'a', run: () => undefined }, { name: 'b', run: () => undefined }] };

async function succeeded(n: TestNode, id: string): Promise<void> {
  await waitFor(async () => (await n.store.getJob(id))?.state === 'succeeded', { timeoutMs: 5_000, intervalMs: 5, message: `job ${id} succeeds` });
}

/** Record every wake of the node's dispatcher; while `swallow` is set, do not pass it on (a wake-up the node never heard). */
function recordWakes(n: TestNode): { wakes: Array<readonly string[] | undefined>; swallow: boolean } {
  const record = { wakes: [] as Array<readonly string[] | undefined>, swallow: false };
  const { dispatcher } = n.runtime;
  const wake = dispatcher.wake.bind(dispatcher);
  dispatcher.wake = (handlers?: readonly string[]) => {
    record.wakes.push(handlers);
    if (!record.swallow) wake(handlers);
  };
  return record;
}

describe.runIf(testEngine() === 'postgres')('fallback poll', () => {
  it('wakes no handler when nothing is queued, and only the handler of a job whose wake-up was lost', async () => {
    const n = await startTestNode(config);
    nodes.push(n);
    const record = recordWakes(n);

    await n.runtime.runTask('poll');
    expect(record.wakes).toEqual([[]]);

    // A job committed while its wake-up goes missing (a NOTIFY lost with its connection): it waits, queued.
    record.swallow = true;
    const [enqueued] = await n.store.enqueue([{ handler: 'a', queue: 'default', payload: null, priority: 0, runAt: Date.now(), maxAttempts: 3 }]);
    const id = enqueued!.job.id;
    expect((await n.store.getJob(id))?.state).toBe('queued');
    record.swallow = false;
    record.wakes.length = 0;

    await n.runtime.runTask('poll');
    expect(record.wakes).toEqual([['a']]);
    await succeeded(n, id);
  });
});
