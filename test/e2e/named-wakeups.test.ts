/**
 * Post-commit wake-ups name the handlers whose jobs were committed, so a node
 * leases for those handlers only: an enqueue for one handler does not ask the
 * store for another handler that was found idle (the built-in drover.*
 * handlers included). Leases are counted through the node's real store.
 * Runs on both engines (the `postgres` project); on PostgreSQL a second node on
 * the same schema is woken by the NOTIFY payload for its handlers.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { LeaseRequest } from '../../src/store/engine.js';
import { startTestNode, testEngine, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';

const nodes: TestNode[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0).reverse()) await n.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Record the handlers every lease of this node asks for (the store itself still answers). */
function countLeases(n: TestNode): LeaseRequest[] {
  const asked: LeaseRequest[] = [];
  const lease = n.store.lease.bind(n.store);
  n.store.lease = (request) => {
    asked.push(request);
    return lease(request);
  };
  return asked;
}

const askedFor = (asked: readonly LeaseRequest[], handler: string) => asked.filter((r) => r.handlers.some((h) => h.name === handler)).length;

async function enqueue(n: TestNode, handler: string): Promise<string> {
  const res = await n.request('POST', '/v1/jobs', { handler, payload: null });
  expect(res.status).toBe(202);
  return res.body.id as string;
}

async function succeeded(n: TestNode, id: string): Promise<void> {
  await waitFor(async () => (await n.store.getJob(id))?.state === 'succeeded', { timeoutMs: 5_000, intervalMs: 5, message: `job ${id} succeeds` });
}

/** Let `worker` find both handlers idle, then record its leases while `count` jobs of a, enqueued on `sender`, run. */
async function leasesForA(sender: TestNode, worker: TestNode, count: number): Promise<LeaseRequest[]> {
  const asked = countLeases(worker);
  await succeeded(worker, await enqueue(sender, 'b'));
  await succeeded(worker, await enqueue(sender, 'a'));
  asked.length = 0;
  for (let i = 0; i < count; i++) await succeeded(worker, await enqueue(sender, 'a'));
  return asked;
}

const config = { handlers: [{ name: 'a', run: () => undefined }, { name: 'b', run: () => undefined }] };

describe('named wake-ups', () => {
  it('an enqueue for handler a leases for a only, not for idle handler b or the built-in handlers', async () => {
    const n = await startTestNode(config);
    nodes.push(n);
    const asked = await leasesForA(n, n, 5);
    // PostgreSQL leases a job enqueued into an idle node in its insert (Dispatcher.claimAtIntake): no lease is asked for a
    // then (a fallback poll, every 2 s, may ask once); SQLite leases after every enqueue, in the insert's group commit.
    if (n.store.capabilities.leaseAtIntake) expect(askedFor(asked, 'a')).toBeLessThanOrEqual(1);
    else expect(askedFor(asked, 'a')).toBeGreaterThan(0);
    // Before: every enqueue asked for b too (at least 5). A fallback poll (PostgreSQL, every 2 s) may ask once.
    expect(askedFor(asked, 'b')).toBeLessThanOrEqual(1);
    expect(asked.filter((r) => r.handlers.some((h) => h.name.startsWith('drover.'))).length).toBeLessThanOrEqual(1);
  });

  it.runIf(testEngine() === 'postgres')('wakes another node on the same schema for the handlers of the jobs committed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-wake-'));
    dirs.push(dir);
    // Port 0: each node gets a node id of its own on the shared schema.
    const sender = await startTestNode({ ...config, server: { port: 0 } }, { dir });
    nodes.push(sender);
    const receiver = await startTestNode({ ...config, server: { port: 0 } }, { dir });
    nodes.push(receiver);
    // Only the receiver leases: the job can start only when it hears of it.
    sender.runtime.dispatcher.stopLeasing();
    const asked = await leasesForA(sender, receiver, 3);
    expect(askedFor(asked, 'a')).toBeGreaterThan(0);
    expect(askedFor(asked, 'b')).toBeLessThanOrEqual(1);
  });
});
