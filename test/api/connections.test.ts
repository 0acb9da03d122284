/**
 * Findings 6 and 12 (issue 15), over real sockets against a listening node:
 * slow bodies and slow headers are cut off within the configured timeouts
 * (they used to stay open indefinitely), connections past `server.maxConnections`
 * are refused, the SSE stream outlives every timeout, and errors Node raises
 * before routing (broken request line, oversized headers, request timeout)
 * answer problem+json.
 */
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ADMIN_KEY, startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';
import { listen, openSse } from './support.js';

interface RawConnection {
  socket: Socket;
  received: () => string;
  closed: Promise<void>;
  isClosed: () => boolean;
}

const sockets: Socket[] = [];
let node: TestNode | undefined;

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await node?.close();
  node = undefined;
});

async function rawConnect(port: number): Promise<RawConnection> {
  const socket = connect({ host: '127.0.0.1', port });
  sockets.push(socket);
  let data = '';
  let closed = false;
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (data += chunk));
  socket.on('error', () => undefined);
  const done = new Promise<void>((resolve) => socket.on('close', () => ((closed = true), resolve())));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, received: () => data, closed: done, isClosed: () => closed };
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

function bodyOf(response: string): any {
  return JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4));
}

describe('request timeouts', () => {
  it('closes slow-body connections within requestTimeoutMs with 408 problem+json', async () => {
    node = await startTestNode({ handlers: [{ name: 'h', remote: true }], server: { requestTimeoutMs: 1000, headersTimeoutMs: 1000 } });
    const port = portOf(await listen(node));
    const slow: RawConnection[] = [];
    const trickles: NodeJS.Timeout[] = [];
    const started = Date.now();
    for (let i = 0; i < 30; i++) {
      const c = await rawConnect(port);
      c.socket.write(`POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_KEY}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"handler":"h","payload":"`);
      // One byte every 100 ms: the connection is never idle, only slow.
      trickles.push(setInterval(() => !c.isClosed() && c.socket.write('a'), 100));
      slow.push(c);
    }
    try {
      await waitFor(() => slow.every((c) => c.isClosed()), { timeoutMs: 6000, message: 'every slow-body connection closed' });
    } finally {
      for (const t of trickles) clearInterval(t);
    }
    const elapsed = Date.now() - started;
    expect(elapsed).toBeLessThan(4000);
    const first = slow[0]!.received();
    expect(first).toMatch(/^HTTP\/1\.1 408 /);
    expect(first).toMatch(/content-type: application\/problem\+json/i);
    expect(bodyOf(first)).toMatchObject({ type: 'https://drover.dev/problems/request-timeout', status: 408 });
    // Nothing half-sent was stored.
    expect((await node.request('GET', '/v1/jobs')).body.jobs).toEqual([]);
  });

  it('closes connections whose headers never finish within headersTimeoutMs', async () => {
    node = await startTestNode({ handlers: [], server: { requestTimeoutMs: 5000, headersTimeoutMs: 1000 } });
    const port = portOf(await listen(node));
    const c = await rawConnect(port);
    c.socket.write('GET /health/live HTTP/1.1\r\nHost: x\r\n');
    const trickle = setInterval(() => !c.isClosed() && c.socket.write('X-A: b\r\n'), 100);
    try {
      await waitFor(() => c.isClosed(), { timeoutMs: 4000, message: 'slow-header connection closed' });
    } finally {
      clearInterval(trickle);
    }
    expect(c.received()).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('keeps an SSE stream open past every timeout while slow requests are cut off', async () => {
    node = await startTestNode({
      handlers: [{ name: 'h', remote: true }],
      server: { requestTimeoutMs: 1000, headersTimeoutMs: 1000, keepAliveTimeoutMs: 1000 },
      stream: { heartbeatMs: 60_000 },
    });
    const base = await listen(node);
    const stream = await openSse(base, '/v1/stream');
    expect(stream.status).toBe(200);
    let streamClosed = false;
    void stream.closed.then(() => (streamClosed = true));
    // A connection opened after the stream that never sends a request: headersTimeoutMs closes it; the stream must outlive it.
    const idle = await rawConnect(portOf(base));
    await waitFor(() => idle.isClosed(), { timeoutMs: 5000, message: 'silent connection closed by headersTimeoutMs' });
    expect(idle.received()).toMatch(/^HTTP\/1\.1 408 /);
    const slow = await rawConnect(portOf(base));
    slow.socket.write('POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{');
    await waitFor(() => slow.isClosed(), { timeoutMs: 5000, message: 'slow body closed by requestTimeoutMs' });
    expect(streamClosed).toBe(false);
    // Still live: a new job shows up on it.
    const created = await node.request('POST', '/v1/jobs', { handler: 'h', payload: {} });
    await waitFor(() => stream.messages().some((m) => m.event === 'job' && m.data.id === created.body.id), {
      timeoutMs: 3000,
      message: 'the stream delivered the new job',
    });
    stream.close();
  });
});

describe('long answers are not requests in progress', () => {
  it('a lease long-polling longer than requestTimeoutMs answers normally', async () => {
    node = await startTestNode({ handlers: [{ name: 'r', remote: true }], server: { requestTimeoutMs: 1000, headersTimeoutMs: 1000 } });
    const base = await listen(node);
    const started = Date.now();
    const response = await fetch(`${base}/v1/workers/lease`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ workerId: 'w1', handlers: ['r'], waitMs: 2500 }),
    });
    expect(response.status).toBe(200);
    expect((await response.json()).jobs).toEqual([]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2400);
  });
});

describe('connection cap', () => {
  it('refuses connections past server.maxConnections and serves the ones it holds', async () => {
    node = await startTestNode({ handlers: [], server: { maxConnections: 5 } });
    const port = portOf(await listen(node));
    const held: RawConnection[] = [];
    for (let i = 0; i < 5; i++) held.push(await rawConnect(port));
    const server = node.app.server;
    const count = () => new Promise<number>((resolve) => server.getConnections((_e, n) => resolve(n)));
    await waitFor(async () => (await count()) === 5, { timeoutMs: 3000, message: 'server holds 5 connections' });
    const extra: RawConnection[] = [];
    for (let i = 0; i < 5; i++) extra.push(await rawConnect(port));
    await waitFor(() => extra.every((c) => c.isClosed()), { timeoutMs: 3000, message: 'connections past the cap closed' });
    expect(extra.every((c) => c.received() === '')).toBe(true);
    // The held connections still work.
    held[0]!.socket.write('GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => held[0]!.received().includes('\r\n\r\n'), { timeoutMs: 3000, message: 'a held connection answered' });
    expect(held[0]!.received()).toMatch(/^HTTP\/1\.1 200 /);
    // Closing one frees a slot.
    held[1]!.socket.destroy();
    await waitFor(async () => (await count()) === 4, { timeoutMs: 3000, message: 'slot freed' });
    const again = await rawConnect(port);
    again.socket.write('GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => again.received().includes('\r\n\r\n'), { timeoutMs: 3000, message: 'a new connection answered' });
    expect(again.received()).toMatch(/^HTTP\/1\.1 200 /);
  });
});

describe('errors before routing', () => {
  it('answers a malformed request line with 400 problem+json malformed-request', async () => {
    node = await startTestNode({ handlers: [] });
    const c = await rawConnect(portOf(await listen(node)));
    c.socket.write('THIS IS NOT HTTP\r\n\r\n');
    await waitFor(() => c.isClosed(), { timeoutMs: 3000, message: 'connection closed' });
    expect(c.received()).toMatch(/^HTTP\/1\.1 400 /);
    expect(c.received()).toMatch(/content-type: application\/problem\+json/i);
    expect(bodyOf(c.received())).toMatchObject({ type: 'https://drover.dev/problems/malformed-request', status: 400, title: expect.any(String), detail: expect.any(String) });
  });

  it('answers oversized headers with 431 problem+json headers-too-large', async () => {
    node = await startTestNode({ handlers: [] });
    const c = await rawConnect(portOf(await listen(node)));
    c.socket.write(`GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(40_000)}\r\n\r\n`);
    await waitFor(() => c.isClosed(), { timeoutMs: 3000, message: 'connection closed' });
    expect(c.received()).toMatch(/^HTTP\/1\.1 431 /);
    expect(bodyOf(c.received())).toMatchObject({ type: 'https://drover.dev/problems/headers-too-large', status: 431 });
  });
});
