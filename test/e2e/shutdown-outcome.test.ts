/**
 * Shutdown never releases a lease under an outcome being written: a job whose
 * handler returned before the grace period ended, with its completion held up
 * in the store past it, ends succeeded (not released and run again).
 */
import { afterEach, expect, it } from 'vitest';
import type { StorageEngine } from '../../src/store/engine.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';

let node: TestNode | undefined;
afterEach(async () => {
  await node?.close();
  node = undefined;
});

it('a success whose write is slow is recorded as succeeded, not released by shutdown', { timeout: 20_000 }, async () => {
  let runs = 0;
  node = await startTestNode({ handlers: [{ name: 'quick', run: () => void runs++ }] });
  // Hold every completion until the test lets it through (the store is slow, e.g. a PostgreSQL retry).
  const store = node.store as StorageEngine & Record<string, unknown>;
  const complete = store.complete.bind(store) as (...args: unknown[]) => Promise<never>;
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  let held = 0;
  store.complete = async (...args: unknown[]) => {
    held++;
    await gate;
    return complete(...args);
  };
  const res = await node.request('POST', '/v1/jobs', { handler: 'quick' });
  expect(res.status).toBe(202);
  await waitFor(() => held === 1, { message: 'the completion is held' });
  const started = performance.now();
  const result = await node.runtime.stop(100);
  const stopMs = Math.round(performance.now() - started);
  console.log(`[shutdown] stop with an outcome write held: ${stopMs} ms, ${JSON.stringify(result)}`);
  open();
  await waitFor(async () => (await node!.store.getJob(res.body.id))?.state === 'succeeded', { message: 'the job succeeded' });
  expect(result.released).toBe(0);
  expect(runs).toBe(1);
  const attempts = await node.store.getAttempts(res.body.id);
  expect(attempts.map((a) => a.outcome)).toEqual(['succeeded']);
});
