/**
 * Pausing and resuming handlers and queues: a pause stops leasing (nothing
 * else), survives a restart, and a resume lets the waiting work run at once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { DroverConfig } from '../../src/core/handler.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';

let node: TestNode | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await node?.close();
  node = undefined;
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const ran: string[] = [];
const config = (): Omit<DroverConfig, 'databaseUrl'> => ({
  handlers: [
    { name: 'mail', run: async (ctx) => void ran.push(ctx.job.id) },
    { name: 'bill', queue: 'billing', run: async (ctx) => void ran.push(ctx.job.id) },
  ],
  queues: { bulk: {} },
  rateLimit: { enabled: false },
});

async function enqueue(n: TestNode, body: Record<string, unknown>): Promise<string> {
  const res = await n.request('POST', '/v1/jobs', body);
  expect(res.status).toBe(202);
  return res.body.id;
}

const stateOf = async (n: TestNode, id: string) => (await n.request('GET', `/v1/jobs/${id}`)).body.state as string;

describe('handler pause, resume and reset', () => {
  it('stops leasing a paused handler; intake still accepts; resume runs the backlog', async () => {
    const n = (node = await startTestNode(config()));
    const paused = await n.request('POST', '/v1/handlers/mail/pause');
    expect(paused.status).toBe(200);
    expect(paused.body).toMatchObject({ name: 'mail', queue: 'default', paused: true, remote: false });

    const held = await enqueue(n, { handler: 'mail' });
    const other = await enqueue(n, { handler: 'bill' });
    await waitFor(() => ran.includes(other), { message: 'the other handler still runs' });
    expect(await stateOf(n, held)).toBe('queued');
    const listed = (await n.request('GET', '/v1/handlers')).body.handlers;
    expect(listed.find((h: { name: string }) => h.name === 'mail')).toMatchObject({ paused: true });

    const resumed = await n.request('POST', '/v1/handlers/mail/resume');
    expect(resumed.body.paused).toBe(false);
    await waitFor(() => ran.includes(held), { message: 'the held job ran after resume' });
  });

  it('reset clears a pause and answers with the handler state', async () => {
    const n = (node = await startTestNode(config()));
    await n.request('POST', '/v1/handlers/mail/pause');
    const reset = await n.request('POST', '/v1/handlers/mail/reset');
    expect(reset.status).toBe(200);
    expect(reset.body).toMatchObject({ name: 'mail', paused: false, running: 0, maxAttempts: 5 });
  });

  it('answers 404 problem+json for a handler or queue that is not configured', async () => {
    const n = (node = await startTestNode(config()));
    for (const url of ['/v1/handlers/nope/pause', '/v1/handlers/nope/reset', '/v1/queues/nope/pause', '/v1/queues/nope/resume']) {
      const res = await n.request('POST', url);
      expect(res.status, url).toBe(404);
      expect(res.body.type).toBe('https://drover.dev/problems/not-found');
    }
  });
});

describe('queue pause and resume', () => {
  it('holds every job in a paused queue, whatever its handler, and shows it in GET /v1/queues', async () => {
    const n = (node = await startTestNode(config()));
    expect((await n.request('POST', '/v1/queues/bulk/pause')).body).toEqual({ name: 'bulk', paused: true, maxDepth: 100_000 });
    // A job sent to another queue than its handler's default: the pause is by queue, not by handler.
    const inBulk = await enqueue(n, { handler: 'mail', queue: 'bulk' });
    const inDefault = await enqueue(n, { handler: 'mail' });
    await waitFor(() => ran.includes(inDefault), { message: 'the same handler still runs in other queues' });
    expect(await stateOf(n, inBulk)).toBe('queued');
    const queues = (await n.request('GET', '/v1/queues')).body.queues;
    expect(queues.find((q: { name: string }) => q.name === 'bulk')).toMatchObject({ paused: true, counts: expect.objectContaining({ queued: 1 }) });
    expect(queues.find((q: { name: string }) => q.name === 'default')).toMatchObject({ paused: false });

    expect((await n.request('POST', '/v1/queues/bulk/resume')).body.paused).toBe(false);
    await waitFor(() => ran.includes(inBulk), { message: 'the bulk job ran after resume' });
  });

  it('keeps pauses across a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-pause-'));
    dirs.push(dir);
    let n = (node = await startTestNode(config(), { dir }));
    await n.request('POST', '/v1/queues/billing/pause');
    await n.request('POST', '/v1/handlers/mail/pause');
    await n.close();

    n = node = await startTestNode(config(), { dir });
    const held = await enqueue(n, { handler: 'bill' });
    const queues = (await n.request('GET', '/v1/queues')).body.queues;
    expect(queues.find((q: { name: string }) => q.name === 'billing').paused).toBe(true);
    const handlers = (await n.request('GET', '/v1/handlers')).body.handlers;
    expect(handlers.find((h: { name: string }) => h.name === 'mail').paused).toBe(true);
    expect(handlers.find((h: { name: string }) => h.name === 'bill').paused).toBe(false);
    expect(await stateOf(n, held)).toBe('queued');
    await n.request('POST', '/v1/queues/billing/resume');
    await waitFor(() => ran.includes(held));
  });

  it('logs the action with the request id and the key that made it', async () => {
    const n = (node = await startTestNode(config()));
    const res = await n.request('POST', '/v1/queues/bulk/pause', undefined, { 'x-request-id': 'ops-ticket-42' });
    expect(res.headers['x-request-id']).toBe('ops-ticket-42');
    const line = n.logLines.find((l) => l.msg === 'queue paused');
    expect(line).toMatchObject({ request_id: 'ops-ticket-42', queue: 'bulk', key_id: expect.stringMatching(/^key_/) });
  });
});
