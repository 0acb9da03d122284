/**
 * Each job's lease follows its own handler (docs/operations.md "Liveness and
 * timings"): jobs of a 5 s and a 300 s handler leased in the same call get
 * 35 s and 330 s leases, not both the longest.
 */
import { afterEach, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';

let node: TestNode | undefined;
afterEach(async () => {
  await node?.close();
  node = undefined;
});

it("gives each running job a lease of its own handler's timeout + 30 s", async () => {
  const now = Date.now();
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  node = await startTestNode({
    handlers: [
      { name: 'quick', timeoutMs: 5_000, run: () => gate },
      { name: 'slow', timeoutMs: 300_000, run: () => gate },
    ],
  }, { clock: () => now });
  // One request, one commit: the dispatcher leases both in one call.
  const res = await node.request('POST', '/v1/jobs', { jobs: [{ handler: 'quick' }, { handler: 'slow' }] });
  expect(res.status).toBe(202);
  const [quick, slow] = res.body.jobs.map((job: { id: string }) => job.id);
  await waitFor(() => node!.runtime.dispatcher.running.size === 2, { message: 'both jobs running' });
  expect((await node.store.getJob(quick))?.leaseExpiresAt).toBe(now + 35_000);
  expect((await node.store.getJob(slow))?.leaseExpiresAt).toBe(now + 330_000);
  open();
});
