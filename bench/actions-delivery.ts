/**
 * Built-in actions, measured in-process (`npx tsx bench/actions-delivery.ts`,
 * N=500 by default): http deliveries per second to a local endpoint, mcp
 * deliveries per second to a local SDK MCP server (each one a session:
 * initialize, call, close), and the latency of a tool call on Drover's own
 * `/mcp` against the same route over HTTP. SQLite, one node; the
 * action handlers' default concurrency (10).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startTestNode, ADMIN_KEY } from '../test/helpers/node.js';
import { startMcpPeer } from '../test/actions/mcp-peer.js';

const N = Number(process.env.N ?? 500);
const api = createServer((req, res) => { req.resume(); req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')); });
await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
const peer = await startMcpPeer('tok');
const node = await startTestNode({ handlers: [{ name: 'noop', run: () => null }], rateLimit: { enabled: false }, webhooks: { allowPrivateNetworks: true } });
const url = `http://127.0.0.1:${(api.address() as AddressInfo).port}/in`;
await node.request('POST', '/v1/triggers', { on: 'h.*', action: { type: 'http', url, body: { id: '{{data.i}}', note: 'n {{data.i}}' } } });
await node.request('POST', '/v1/triggers', { on: 'm.*', action: { type: 'mcp', url: peer.url, tool: 'create_ticket', arguments: { title: 't {{data.i}}', priority: '{{data.i}}' }, auth: { value: { value: 'Bearer tok' } } } });

const done = new Map<string, number>();
node.runtime.lifecycle.on('job:succeeded', (e: any) => done.set(e.job.handler, (done.get(e.job.handler) ?? 0) + 1));
node.runtime.lifecycle.on('job:failed', (e: any) => console.error('failed', e.error?.message));
async function run(prefix: string, handler: string, n: number) {
  const t0 = performance.now();
  for (let i = 0; i < n; i += 100) {
    const events = Array.from({ length: Math.min(100, n - i) }, (_, k) => ({ name: `${prefix}.x`, data: { i: i + k } }));
    const r = await node.request('POST', '/v1/events', { events });
    if (r.status !== 202) throw new Error(JSON.stringify(r.body));
  }
  while ((done.get(handler) ?? 0) < n) await new Promise((res) => setTimeout(res, 20));
  const s = (performance.now() - t0) / 1000;
  console.log(`${handler}: ${n} deliveries in ${s.toFixed(2)} s = ${(n / s).toFixed(0)}/s`);
}
await run('h', 'drover.http', N);
await run('m', 'drover.mcp', Math.min(N, 300));

const base = await node.app.listen({ host: '127.0.0.1', port: 0 });
const client = new Client({ name: 'm', version: '1' });
await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { requestInit: { headers: { authorization: `Bearer ${ADMIN_KEY}` } } }));
const lat: number[] = [];
for (let i = 0; i < 300; i++) { const t = performance.now(); await client.callTool({ name: 'get_job', arguments: { id: '1' } }); lat.push(performance.now() - t); }
lat.sort((a, b) => a - b);
console.log(`/mcp get_job: p50 ${lat[150]!.toFixed(2)} ms, p99 ${lat[297]!.toFixed(2)} ms (300 sequential calls)`);
const lat2: number[] = [];
for (let i = 0; i < 300; i++) { const t = performance.now(); await (await fetch(`${base}/v1/jobs/1`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).text(); lat2.push(performance.now() - t); }
lat2.sort((a, b) => a - b);
console.log(`GET /v1/jobs/1 over HTTP (fetch, for comparison): p50 ${lat2[150]!.toFixed(2)} ms, p99 ${lat2[297]!.toFixed(2)} ms`);
await client.close();
await node.close();
await peer.close();
api.close();
