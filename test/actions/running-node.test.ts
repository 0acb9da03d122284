/**
 * Every built-in action delivering through a running node, the way users run
 * it: `drover start` as a child process (SQLite), triggers created over real
 * HTTP, one event fanned out to a webhook receiver, a REST endpoint, a Bot
 * API double and a real SDK MCP server; then an MCP client on the node's own
 * `/mcp` reads each delivery back.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, describe, expect, it } from 'vitest';
import { api, killAllChildren, startChildNode } from '../helpers/child-node.js';
import { waitFor } from '../helpers/wait-for.js';
import { startMcpPeer, type McpPeer } from './mcp-peer.js';

const KEY = 'drv_running_node_admin_key_000000000001';
const dir = mkdtempSync(join(tmpdir(), 'drover-actions-e2e-'));
const servers: Server[] = [];
let peer: McpPeer | undefined;
let client: Client | undefined;

afterAll(async () => {
  await client?.close();
  await killAllChildren();
  await peer?.close();
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  rmSync(dir, { recursive: true, force: true });
});

/** A local endpoint answering every request with `status` and `json`; the requests' paths and bodies. */
async function endpoint(json: (path: string, body: string) => unknown, status = 200): Promise<{ url: string; seen: Array<{ path: string; body: string }> }> {
  const seen: Array<{ path: string; body: string }> = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      seen.push({ path: req.url ?? '', body });
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json(req.url ?? '', body)));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

describe('built-in actions through a running node', () => {
  it('one event reaches a webhook receiver, a REST API, Telegram and an MCP tool; /mcp reads the deliveries back', { timeout: 60_000 }, async () => {
    const receiver = await endpoint(() => ({}));
    const rest = await endpoint(() => ({ id: 'inv_1' }), 201);
    const bot = await endpoint((_path, body) => ({ ok: true, result: { message_id: 7, chat: { id: Number((JSON.parse(body) as { chat_id: string }).chat_id) } } }));
    peer = await startMcpPeer('e2e-mcp-token');
    const config = join(dir, 'drover.config.mjs');
    writeFileSync(config, `export default {
  handlers: [{ name: 'noop', run: () => null }],
  webhooks: { allowPrivateNetworks: true },
  actions: { telegramApiUrl: ${JSON.stringify(bot.url)} },
};\n`);
    const node = await startChildNode({
      config,
      cwd: dir,
      env: { DROVER_DATABASE_URL: join(dir, 'drover.db'), DROVER_BOOTSTRAP_ADMIN_KEY: KEY, DROVER_SECRET_E2E_TG: '7000:e2e-bot-token', DROVER_SECRET_E2E_MCP: 'Bearer e2e-mcp-token' },
    });
    const triggers = [
      { type: 'webhook', url: `${receiver.url}/hook` },
      { type: 'http', url: `${rest.url}/invoices`, body: { order: '{{data.orderId}}' }, expectedStatuses: [201] },
      { type: 'telegram', token: { env: 'DROVER_SECRET_E2E_TG' }, chatId: -100123, text: 'order {{data.orderId}}' },
      { type: 'mcp', url: peer.url, tool: 'create_ticket', arguments: { title: 'order {{data.orderId}}', priority: 1 }, auth: { value: { env: 'DROVER_SECRET_E2E_MCP' } } },
    ];
    for (const action of triggers) expect((await api(node.url, KEY, 'POST', '/v1/triggers', { on: 'order.paid', action })).status).toBe(201);

    const sent = await api(node.url, KEY, 'POST', '/v1/events', { name: 'order.paid', data: { orderId: 'o-42' } });
    expect(sent.status).toBe(202);
    const jobs = (await api(node.url, KEY, 'GET', `/v1/events/${sent.body.id as string}`)).body.jobs as Array<{ id: string; handler: string }>;
    expect(jobs.map((j) => j.handler).sort()).toEqual(['drover.http', 'drover.mcp', 'drover.telegram', 'drover.webhook']);

    client = new Client({ name: 'e2e', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${node.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${KEY}` } } }));
    const results: Record<string, unknown> = {};
    for (const job of jobs) {
      results[job.handler] = await waitFor(async () => {
        const got = (await client!.callTool({ name: 'get_job', arguments: { id: job.id } })) as unknown as { structuredContent: { state: string; result: unknown; lastError: string | null } };
        expect(got.structuredContent.state, got.structuredContent.lastError ?? '').not.toBe('dead');
        return got.structuredContent.state === 'succeeded' ? got.structuredContent.result : null;
      }, { timeoutMs: 20_000, message: `${job.handler} delivered` });
    }
    expect(results).toEqual({
      'drover.webhook': { status: 200 },
      'drover.http': { status: 201, body: { id: 'inv_1' } },
      'drover.telegram': { messageId: 7, chatId: -100123 },
      'drover.mcp': { content: [{ type: 'text', text: 'opened T-1: order o-42' }], structuredContent: { ticketId: 'T-1' } },
    });
    expect(JSON.parse(rest.seen[0]!.body)).toEqual({ order: 'o-42' });
    expect(bot.seen[0]!.path).toBe('/bot7000:e2e-bot-token/sendMessage');
    expect(JSON.parse(receiver.seen[0]!.body)).toMatchObject({ name: 'order.paid', data: { orderId: 'o-42' } });

    node.child.kill('SIGTERM');
    expect(await node.exited).toEqual({ code: 0, signal: null });
  });
});
