/**
 * The `mcp` action against a real MCP server built with the official SDK
 * (mcp-peer.ts): the tool called with templated arguments and the auth
 * header from a secret reference, its result stored as the job's result,
 * `isError` failing the attempt with the tool's text (retried, then dead),
 * a wrong token or an unknown tool failing at once, the SSRF guard.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { startMcpPeer, type McpPeer } from './mcp-peer.js';
import { actionConfig, createTrigger, send, settled } from './support.js';

const TOKEN = 'mcp-peer-token-8c1f0e';

let node: TestNode | undefined;
let peer: McpPeer | undefined;
afterEach(async () => {
  await node?.close();
  node = undefined;
  await peer?.close();
  peer = undefined;
  delete process.env.DROVER_SECRET_TEST_MCP;
});

const ticketAction = (url: string, extra: Record<string, unknown> = {}) => ({
  type: 'mcp',
  url,
  tool: 'create_ticket',
  arguments: { title: 'Order {{data.orderId}} failed', priority: '{{data.priority}}', tags: ['{{event.name}}'] },
  auth: { value: { value: `Bearer ${TOKEN}` } },
  ...extra,
});

describe('mcp action', () => {
  it('calls the tool with templated arguments and stores its result as the job result', async () => {
    peer = await startMcpPeer(TOKEN);
    process.env.DROVER_SECRET_TEST_MCP = `Bearer ${TOKEN}`;
    node = await startTestNode(actionConfig());
    const { body } = await createTrigger(node, ticketAction(peer.url, { auth: { header: 'Authorization', value: { env: 'DROVER_SECRET_TEST_MCP' } } }));
    expect(body.action).toMatchObject({ type: 'mcp', tool: 'create_ticket', auth: { header: 'Authorization', value: { env: 'DROVER_SECRET_TEST_MCP' } } });
    const id = await send(node, 'drover.mcp', { orderId: 'o-5', priority: 2 });
    const done = await settled(node, id);
    expect(done.state, done.lastError ?? '').toBe('succeeded');
    expect(done.result).toEqual({ content: [{ type: 'text', text: 'opened T-1: Order o-5 failed' }], structuredContent: { ticketId: 'T-1' } });
    expect(peer.calls).toEqual([{ tool: 'create_ticket', args: { title: 'Order o-5 failed', priority: 2, tags: ['order.created'] }, authorization: `Bearer ${TOKEN}` }]);
  });

  it('reads a server that answers as an SSE stream (through the guarded fetch)', async () => {
    peer = await startMcpPeer(TOKEN, { sse: true });
    node = await startTestNode(actionConfig());
    await createTrigger(node, ticketAction(peer.url));
    const done = await settled(node, await send(node, 'drover.mcp', { orderId: 'o-8', priority: 3 }));
    expect(done.state, done.lastError ?? '').toBe('succeeded');
    expect(done.result).toMatchObject({ structuredContent: { ticketId: 'T-1' } });
  });

  it('a tool error (isError) fails the attempt with its text; the next attempt succeeds', async () => {
    peer = await startMcpPeer(TOKEN);
    peer.failNext(1);
    node = await startTestNode(actionConfig());
    const { body } = await createTrigger(node, ticketAction(peer.url));
    expect(body.action.auth).toEqual({ header: 'Authorization', value: { value: '[redacted]' } });
    const done = await settled(node, await send(node, 'drover.mcp', { orderId: 'o-6', priority: 1 }));
    expect(done.state).toBe('succeeded');
    expect(done.attempts).toHaveLength(2);
    expect(done.attempts[0]!.error).toContain('MCP tool create_ticket');
    expect(done.attempts[0]!.error).toContain('ticket system is read-only right now');
    // The tool echoed the token: scrubbed before it became the job's error.
    expect(done.attempts[0]!.error).toContain('[redacted]');
    expect(JSON.stringify(done)).not.toContain(TOKEN);
    expect(done.result).toMatchObject({ structuredContent: { ticketId: 'T-2' } });
    const shown = [(await node.request('GET', '/v1/triggers')).body, (await node.request('GET', '/v1/audit')).body, node.logLines];
    expect(JSON.stringify(shown)).not.toContain(TOKEN);
  });

  it('isError on every attempt leaves the job dead (exhausted) with the tool text', async () => {
    peer = await startMcpPeer(TOKEN);
    peer.failNext(10);
    node = await startTestNode(actionConfig({ webhooks: { maxAttempts: 2 } }));
    await createTrigger(node, ticketAction(peer.url));
    const done = await settled(node, await send(node, 'drover.mcp', { orderId: 'o-7', priority: 1 }));
    expect(done).toMatchObject({ state: 'dead', deadReason: 'exhausted' });
    expect(done.lastError).toContain('read-only');
  });

  it('a wrong token (401) fails at once; arguments the tool refuses fail every attempt', async () => {
    peer = await startMcpPeer(TOKEN);
    node = await startTestNode(actionConfig());
    await createTrigger(node, ticketAction(peer.url, { auth: { value: { value: 'Bearer wrong-token-000' } } }), 'wrong.*');
    await createTrigger(node, ticketAction(peer.url, { arguments: { title: 42 } }), 'badargs.*');
    const unauthorized = await settled(node, await send(node, 'drover.mcp', {}, 'wrong.token'));
    expect(unauthorized.state).toBe('dead');
    expect(unauthorized.deadReason).toBe('non_retryable');
    expect(unauthorized.lastError).toMatch(/401/);
    expect(unauthorized.lastError).not.toContain('wrong-token-000');
    const badArgs = await settled(node, await send(node, 'drover.mcp', {}, 'badargs.now'));
    // The SDK's server reports arguments that fail the tool's schema as a tool error (isError): retried like any.
    expect(badArgs).toMatchObject({ state: 'dead', deadReason: 'exhausted' });
    expect(badArgs.lastError).toMatch(/title/i);
    expect(peer.calls).toHaveLength(0);
  });

  it('an unknown tool fails every attempt with the server\'s text (the SDK\'s server reports it as a tool error)', async () => {
    peer = await startMcpPeer(TOKEN);
    node = await startTestNode(actionConfig());
    await createTrigger(node, ticketAction(peer.url, { tool: 'no_such_tool' }));
    const done = await settled(node, await send(node, 'drover.mcp', {}));
    expect(done).toMatchObject({ state: 'dead', deadReason: 'exhausted' });
    expect(done.lastError).toContain('Tool no_such_tool not found');
  });

  it('the SSRF guard refuses a private server URL at create, and at delivery when stored anyway', async () => {
    peer = await startMcpPeer(TOKEN);
    node = await startTestNode(actionConfig({ webhooks: { allowPrivateNetworks: false } }));
    const refused = await node.request('POST', '/v1/triggers', { on: 'order.*', action: ticketAction(peer.url) });
    expect(refused.status).toBe(422);
    expect(refused.body.type).toBe('https://drover.dev/problems/forbidden-target');
    const stored = [{ id: 'trg_mcp_stored', on: 'order.*', filter: null, createdAt: 0, action: { type: 'mcp', url: peer.url.replace('127.0.0.1', 'localhost'), tool: 'create_ticket', arguments: {}, auth: null, timeoutMs: null } }];
    await node.store.updateMeta('webhook_triggers', () => JSON.stringify(stored));
    await node.runtime.triggers.load();
    const done = await settled(node, await send(node, 'drover.mcp', {}));
    expect(done).toMatchObject({ state: 'dead', deadReason: 'non_retryable' });
    expect(done.lastError).toMatch(/loopback, private, link-local or metadata/);
    expect(peer.calls).toHaveLength(0);
  });
});
