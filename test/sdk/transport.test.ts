/**
 * The SDK's transport on real sockets: calls of one tick coalesced into one
 * batch with each call's own answer (and its own error when the batch is
 * refused), kept-alive connections reused, timeouts, a server that is gone or
 * drops a kept-alive connection, and retries after 503 over node:http.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, DroverApiError, DroverNetworkError, isProblem, type DroverClient } from '../../src/sdk/client.js';
import { ADMIN_KEY, startTestNode, type TestNode } from '../helpers/node.js';
import { listen } from '../api/support.js';

let node: TestNode;
let base: string;
let client: DroverClient;
/** What reached the node's HTTP server: `METHOD path` per request, and the connections opened. */
const seen = { requests: [] as string[], connections: 0 };

beforeAll(async () => {
  node = await startTestNode({
    handlers: [{ name: 'r', remote: true }],
    rateLimit: { enabled: false },
  });
  base = await listen(node);
  node.app.server.on('request', (req: IncomingMessage) => seen.requests.push(`${req.method} ${req.url}`));
  node.app.server.on('connection', () => seen.connections++);
  client = createClient({ url: base, key: ADMIN_KEY });
});
afterAll(async () => node?.close());

function reset(): void {
  seen.requests.length = 0;
  seen.connections = 0;
}

/** A raw HTTP server for the answers a Drover node never gives (silence, resets); closed after the test. */
async function rawServer(handle: (req: IncomingMessage, res: ServerResponse, served: number) => void): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  const perSocket = new WeakMap<Socket, number>();
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    const served = perSocket.get(req.socket) ?? 0;
    perSocket.set(req.socket, served + 1);
    handle(req, res, served);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('coalescing', () => {
  it('sends the enqueues of one tick as one batch request, each call answered with its own job', async () => {
    reset();
    const jobs = await Promise.all(Array.from({ length: 16 }, (_, i) => client.enqueue({ handler: 'r', payload: { i } })));
    expect(seen.requests.filter((r) => r === 'POST /v1/jobs')).toHaveLength(1);
    expect(new Set(jobs.map((j) => j.id)).size).toBe(16);
    for (const [i, job] of jobs.entries()) {
      expect(job).toMatchObject({ handler: 'r', created: true, state: 'queued' });
      const stored = await client.getJob(job.id);
      expect(stored.payload).toEqual({ i });
    }
  });

  it('keeps per-call errors: one invalid call fails alone, its neighbours are accepted once', async () => {
    reset();
    const results = await Promise.allSettled([
      client.enqueue({ handler: 'r', payload: { n: 'first' } }),
      client.enqueue({ handler: 'missing' }),
      client.enqueue({ handler: 'r', priority: 1.5 }),
      client.enqueue({ handler: 'r', payload: { n: 'last' } }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    const [first, missing, invalid, last] = results;
    expect(isProblem((missing as PromiseRejectedResult).reason, 'unknown-handler')).toBe(true);
    // The same error as the call meets when sent alone.
    const alone = (await client.enqueue({ handler: 'r', priority: 1.5 }).catch((e: unknown) => e)) as DroverApiError;
    expect(alone).toBeInstanceOf(DroverApiError);
    const batched = (invalid as PromiseRejectedResult).reason as DroverApiError;
    expect(batched).toBeInstanceOf(DroverApiError);
    expect({ code: batched.code, status: batched.status, detail: batched.detail }).toEqual({ code: alone.code, status: alone.status, detail: alone.detail });
    // The refused batch wrote nothing: each valid call is stored exactly once.
    const firstJob = (first as PromiseFulfilledResult<{ id: string }>).value;
    const lastJob = (last as PromiseFulfilledResult<{ id: string }>).value;
    expect((await client.getJob(firstJob.id)).payload).toEqual({ n: 'first' });
    expect((await client.getJob(lastJob.id)).payload).toEqual({ n: 'last' });
    const stored = [];
    for await (const job of client.listJobs({ handler: 'r', state: 'queued' })) if ((job as { payload?: { n?: string } }).payload?.n) stored.push(job.id);
    expect(stored.filter((id) => id === firstJob.id || id === lastJob.id)).toHaveLength(2);
    // One batch, then each call on its own.
    expect(seen.requests.filter((r) => r === 'POST /v1/jobs')).toHaveLength(6);
  });

  it('never puts two calls with the same idempotency key in one batch: the second is a replay', async () => {
    const key = `k-${Date.now()}`;
    const [a, b, c] = await Promise.all([
      client.enqueue({ handler: 'r', idempotencyKey: key }),
      client.enqueue({ handler: 'r', idempotencyKey: key }),
      client.enqueue({ handler: 'r' }),
    ]);
    expect(b!.id).toBe(a!.id);
    expect([a!.created, b!.created]).toEqual([true, false]);
    expect(c!.id).not.toBe(a!.id);
  });

  it('coalesces sendEvent calls too, with client-side ids', async () => {
    reset();
    const sent = await Promise.all(Array.from({ length: 5 }, (_, i) => client.sendEvent({ name: 'tick', data: { i } })));
    expect(seen.requests.filter((r) => r === 'POST /v1/events')).toHaveLength(1);
    expect(new Set(sent.map((e) => e.id)).size).toBe(5);
    expect(sent.every((e) => e.created && /^evt_/.test(e.id))).toBe(true);
  });

  it('rejects an aborted call with its reason, without failing the rest of its batch', async () => {
    const controller = new AbortController();
    const calls = [client.enqueue({ handler: 'r' }), client.enqueue({ handler: 'r' }, { signal: controller.signal }), client.enqueue({ handler: 'r' })];
    controller.abort(new Error('caller gave up'));
    const results = await Promise.allSettled(calls);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(((results[1] as PromiseRejectedResult).reason as Error).message).toBe('caller gave up');
  });

  it('fails a call whose payload is not JSON, alone', async () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const results = await Promise.allSettled([client.enqueue({ handler: 'r', payload: cyclic }), client.enqueue({ handler: 'r' })]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled']);
  });
});

describe('connections', () => {
  it('reuses one kept-alive connection for sequential requests', async () => {
    const own = createClient({ url: base, key: ADMIN_KEY });
    reset();
    for (let i = 0; i < 20; i++) await own.enqueue({ handler: 'r' });
    await own.getJob((await own.enqueue({ handler: 'r' })).id);
    expect(seen.requests).toHaveLength(22);
    expect(seen.connections).toBe(1);
  });

  it('gives up after the per-attempt timeout when the server never answers', async () => {
    const silent = await rawServer(() => undefined);
    try {
      const started = performance.now();
      const error = await createClient({ url: silent.url, key: 'k', timeoutMs: 200 }).getJob('1').then(
        () => null,
        (e: unknown) => e,
      );
      // A read is retried (3 times by default): four attempts of 200 ms plus backoff, well under 10 s.
      expect(error).toBeInstanceOf(DroverNetworkError);
      expect((error as Error).message).toMatch(/no answer within 200 ms/);
      expect(performance.now() - started).toBeLessThan(10_000);
    } finally {
      await silent.close();
    }
  });

  it('reports a server that is gone as a network error, and does not resend a non-idempotent enqueue', async () => {
    const gone = await rawServer(() => undefined);
    const url = gone.url;
    await gone.close();
    const error = await createClient({ url, key: 'k' }).enqueue({ handler: 'r' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DroverNetworkError);
    expect((error as Error).message).toMatch(/POST \/v1\/jobs: .*ECONNREFUSED/);
  });

  it('does not resend an enqueue whose kept-alive connection broke under it (it may have been processed); a read is retried', async () => {
    let answered = 0;
    // Answers the first request of each connection; drops the connection on the second.
    const dropping = await rawServer((req, res, served) => {
      if (served > 0) return req.socket.destroy();
      answered++;
      res.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify({ id: String(answered), created: true }));
    });
    try {
      const c = createClient({ url: dropping.url, key: 'k' });
      expect((await c.enqueue({ handler: 'r' })).id).toBe('1');
      // A read is safe to send again: dropped on the kept-alive connection, it is retried on a fresh one.
      expect((await c.getJob('1')).id).toBe('2');
      expect(answered).toBe(2);
      const error = await c.enqueue({ handler: 'r' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DroverNetworkError);
      expect(answered).toBe(2);
    } finally {
      await dropping.close();
    }
  });

  it('retries a 503 after Retry-After over node:http', async () => {
    let calls = 0;
    const flaky = await rawServer((_req, res) => {
      calls++;
      if (calls === 1) {
        res.writeHead(503, { 'content-type': 'application/problem+json', 'retry-after': '0' });
        res.end(JSON.stringify({ type: 'https://drover.dev/problems/shutting-down', title: 'shutting down', status: 503, detail: 'later' }));
        return;
      }
      res.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify({ id: '7', created: true }));
    });
    try {
      expect((await createClient({ url: flaky.url, key: 'k' }).enqueue({ handler: 'r' })).id).toBe('7');
      expect(calls).toBe(2);
    } finally {
      await flaky.close();
    }
  });
});
