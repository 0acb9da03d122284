/**
 * What the composition root (src/node/start-node.ts) injects into the runtime
 * instead of the runtime reaching up into ops/: the doctor's probe handler as
 * a built-in (a config handler of the same name wins) and the node's signed
 * audit trail.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { installationKeys } from '../../src/ops/audit/node-key.js';
import { SMOKE_EVENT, SMOKE_HANDLER } from '../../src/ops/doctor/smoke-handler.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';

let node: TestNode | null = null;
afterEach(async () => {
  await node?.close();
  node = null;
});

async function resultOf(n: TestNode, eventId: string): Promise<unknown> {
  const ingested = await n.request('POST', '/v1/events', { name: SMOKE_EVENT, id: eventId, data: {} });
  expect(ingested.status).toBe(202);
  const jobId = (ingested.body as { jobs: Array<{ id: string }> }).jobs[0]!.id;
  let job: { state: string; result: unknown } | null = null;
  await waitFor(async () => {
    job = (await n.request('GET', `/v1/jobs/${jobId}`)).body as { state: string; result: unknown };
    return job.state === 'succeeded';
  }, { timeoutMs: 10_000 });
  return job!.result;
}

describe('runtime dependencies injected by startNode', () => {
  it('runs the probe handler on every node', async () => {
    node = await startTestNode({ handlers: [] });
    expect(node.runtime.config.handlers.has(SMOKE_HANDLER)).toBe(true);
    expect(await resultOf(node, 'smoke-1')).toMatchObject({ ok: true });
  });

  it('lets a config handler of the same name replace the probe handler', async () => {
    node = await startTestNode({ handlers: [{ name: SMOKE_HANDLER, on: SMOKE_EVENT, run: () => ({ mine: true }) }] });
    expect(await resultOf(node, 'smoke-2')).toEqual({ mine: true });
  });

  it('carries the node\'s signed audit trail (the key in the data directory), not one of its own', async () => {
    node = await startTestNode({ handlers: [] });
    const record = await node.runtime.audit.record({ actor: 'test', action: 'job.cancel', target: 'job:1' });
    // Signed by the installation's key (the data directory), so `drover audit verify` and backups trust it.
    expect(installationKeys(node.dir).map((k) => k.keyId)).toContain(record.signer);
    const listed = await node.request('GET', '/v1/audit');
    expect(JSON.stringify(listed.body)).toContain(record.hash);
  });
});
