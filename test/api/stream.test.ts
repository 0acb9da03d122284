/**
 * GET /v1/stream over a real socket: job, handler and queue state changes,
 * filters, heartbeats, Last-Event-ID resume and the explicit gap message.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';
import { listen, openSse, type SseConnection } from './support.js';

let node: TestNode | undefined;
const connections: SseConnection[] = [];
afterEach(async () => {
  for (const c of connections.splice(0)) c.close();
  await node?.close();
  node = undefined;
});

async function start(stream: Record<string, number> = {}): Promise<{ n: TestNode; base: string }> {
  node = await startTestNode({
    handlers: [
      { name: 'ok', on: 'ok.*', run: async () => ({ fine: true }) },
      { name: 'boom', on: 'boom', queue: 'risky', retry: { maxAttempts: 1 }, run: async () => Promise.reject(new Error('kaput')) },
      { name: 'remote', remote: true },
    ],
    rateLimit: { enabled: false },
    stream,
  });
  return { n: node, base: await listen(node) };
}

async function open(base: string, path: string, headers: Record<string, string> = {}): Promise<SseConnection> {
  const c = await openSse(base, path, undefined, headers);
  connections.push(c);
  return c;
}

const states = (c: SseConnection, jobId: string) => c.messages().filter((m) => m.event === 'job' && m.data.id === jobId).map((m) => m.data.state);

describe('GET /v1/stream', () => {
  it('streams each state change of a job, filtered by handler', async () => {
    const { n, base } = await start();
    const c = await open(base, '/v1/stream?handler=ok');
    expect(c.status).toBe(200);
    expect(c.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(c.headers.get('x-request-id')).toBeTruthy();

    const ok = (await n.request('POST', '/v1/events', { name: 'ok.go' })).body.jobs[0].id;
    const boom = (await n.request('POST', '/v1/events', { name: 'boom' })).body.jobs[0].id;
    await waitFor(() => states(c, ok).includes('succeeded'), { message: 'ok succeeded on the stream' });
    // `queued` may be skipped when the job starts in the same commit that inserted it; never out of order.
    expect(['queued', 'running', 'succeeded'].filter((st) => states(c, ok).includes(st))).toEqual(states(c, ok));
    expect(states(c, ok).slice(-2)).toEqual(['running', 'succeeded']);
    await waitFor(async () => (await n.request('GET', `/v1/jobs/${boom}`)).body.state === 'dead');
    expect(states(c, boom)).toEqual([]);
    const ids = c.messages().map((m) => m.id!);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('filters by queue and by job id, and reports failures with their error', async () => {
    const { n, base } = await start();
    // Paused, so the job cannot finish before the job-filtered stream is open.
    await n.request('POST', '/v1/handlers/boom/pause');
    const byQueue = await open(base, '/v1/stream?queue=risky');
    const boom = (await n.request('POST', '/v1/events', { name: 'boom' })).body.jobs[0].id;
    const byJob = await open(base, `/v1/stream?job=${boom}`);
    await n.request('POST', '/v1/events', { name: 'ok.x' });
    await n.request('POST', '/v1/handlers/boom/resume');
    await waitFor(() => states(byQueue, boom).includes('dead'), { message: 'boom is dead on the stream' });
    const dead = byQueue.messages().find((m) => m.data.state === 'dead')!;
    expect(dead.data).toMatchObject({ handler: 'boom', queue: 'risky', outcome: 'failed', error: 'kaput', retryAt: null });
    expect(byQueue.messages().every((m) => m.data.queue === 'risky')).toBe(true);
    await waitFor(() => states(byJob, boom).includes('dead'));
    expect(byJob.messages().map((m) => [m.data.id, m.data.state])).toEqual([
      [boom, 'running'],
      [boom, 'dead'],
    ]);
  });

  it('streams handler and queue pauses, cancels and retries', async () => {
    const { n, base } = await start();
    const c = await open(base, '/v1/stream');
    await n.request('POST', '/v1/handlers/remote/pause');
    await n.request('POST', '/v1/queues/risky/pause');
    await n.request('POST', '/v1/queues/risky/resume');
    const id = (await n.request('POST', '/v1/jobs', { handler: 'remote' })).body.id;
    await n.request('POST', `/v1/jobs/${id}/cancel`);
    await n.request('POST', `/v1/jobs/${id}/retry`);
    await waitFor(() => c.messages().length >= 6, { message: 'six messages' });
    expect(c.messages().map((m) => [m.event, m.data.name ?? m.data.id, m.data.paused ?? m.data.state])).toEqual([
      ['handler', 'remote', true],
      ['queue', 'risky', true],
      ['queue', 'risky', false],
      ['job', id, 'queued'],
      ['job', id, 'cancelled'],
      ['job', id, 'queued'],
    ]);
  });

  it('sends a :hb comment every heartbeat interval', async () => {
    const { base } = await start({ heartbeatMs: 100 });
    const c = await open(base, '/v1/stream');
    await waitFor(() => c.frames.filter((f) => f.comments.includes('hb')).length >= 2, { message: 'two heartbeats' });
  });

  it('resumes from Last-Event-ID with exactly the messages missed', async () => {
    const { n, base } = await start();
    const first = await open(base, '/v1/stream?handler=remote');
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await n.request('POST', '/v1/jobs', { handler: 'remote' })).body.id);
    await waitFor(() => first.messages().length === 3);
    const last = first.messages()[2]!.id!;
    first.close();
    for (let i = 0; i < 4; i++) ids.push((await n.request('POST', '/v1/jobs', { handler: 'remote' })).body.id);

    const resumed = await open(base, '/v1/stream?handler=remote', { 'last-event-id': last });
    await waitFor(() => resumed.messages().length === 4, { message: 'the four missed messages' });
    ids.push((await n.request('POST', '/v1/jobs', { handler: 'remote' })).body.id);
    await waitFor(() => resumed.messages().length === 5, { message: 'then live ones' });
    expect(resumed.messages().map((m) => m.data.id)).toEqual(ids.slice(3));
    expect(resumed.messages().some((m) => m.event === 'gap')).toBe(false);

    // The same works with ?lastEventId= for clients that cannot set headers.
    const viaQuery = await open(base, `/v1/stream?handler=remote&lastEventId=${encodeURIComponent(last)}`);
    await waitFor(() => viaQuery.messages().length === 5);
  });

  it('says so with an explicit gap message when the id is older than the buffer', async () => {
    const { n, base } = await start({ bufferSize: 3 });
    const first = await open(base, '/v1/stream');
    await n.request('POST', '/v1/jobs', { handler: 'remote' });
    await waitFor(() => first.messages().length === 1);
    const old = first.messages()[0]!.id!;
    first.close();
    for (let i = 0; i < 5; i++) await n.request('POST', '/v1/jobs', { handler: 'remote' });

    const resumed = await open(base, '/v1/stream', { 'last-event-id': old });
    await waitFor(() => resumed.messages().length >= 1, { message: 'the gap message' });
    const [gap] = resumed.messages();
    expect(gap!.event).toBe('gap');
    expect(gap!.data).toMatchObject({ lastEventId: old, reason: expect.stringContaining('older than the retention window') });
    // The stream goes on live from there; nothing from the buffer is replayed after a gap.
    const live = (await n.request('POST', '/v1/jobs', { handler: 'remote' })).body.id;
    await waitFor(() => resumed.messages().length === 2);
    expect(resumed.messages()[1]!.data.id).toBe(live);
    // Resuming from the gap message's own id loses nothing more.
    const fromGap = await open(base, '/v1/stream', { 'last-event-id': gap!.id! });
    await waitFor(() => fromGap.messages().length === 1);
    expect(fromGap.messages()[0]!.data.id).toBe(live);
  });

  it('treats an id from another node or an earlier run as a gap', async () => {
    const { base } = await start();
    for (const id of ['abc123-5', 'garbage', '']) {
      const c = await open(base, '/v1/stream', { 'last-event-id': id });
      if (id === '') continue; // empty means "no id": a fresh stream
      await waitFor(() => c.messages().length === 1);
      expect(c.messages()[0]!.event).toBe('gap');
    }
  });

  it('refuses malformed filters with 422 problem+json', async () => {
    const { n } = await start();
    for (const query of ['handler=has%20space', 'queue=', 'bogus=1', 'handler=a,,b']) {
      const res = await n.request('GET', `/v1/stream?${query}`);
      expect(res.status, query).toBe(422);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    }
  });

  it('ends open streams when the node shuts down', async () => {
    const { n, base } = await start();
    const c = await open(base, '/v1/stream');
    const started = performance.now();
    await n.close();
    node = undefined;
    await c.closed;
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});
