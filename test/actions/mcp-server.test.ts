/**
 * Drover as an MCP server: the official SDK client over Streamable HTTP
 * against a running node (a real listener). Lists the tools (their input
 * schemas are the routes' schema objects), calls each, and checks that the
 * key's scopes decide as over HTTP: a read key cannot send events, a
 * produce key cannot reset a handler or list handlers, a work key cannot
 * connect at all; every call is audited.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nameParam } from '../../src/api/routes/control.js';
import { eventSchema, jobSchema } from '../../src/api/routes/intake.js';
import { idParam as interruptId, listQuery as interruptList, resumeBody } from '../../src/api/routes/interrupts.js';
import { idParam, listQuery } from '../../src/api/routes/jobs.js';
import { ADMIN_KEY, startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';
import { keyWith, listen } from '../api/support.js';

let node: TestNode;
let base: string;
const keys: Record<'admin' | 'read' | 'produce' | 'work' | 'resume', string> = { admin: ADMIN_KEY, read: '', produce: '', work: '', resume: '' };
const clients: Client[] = [];

beforeAll(async () => {
  node = await startTestNode({
    handlers: [
      { name: 'greet', on: 'user.signed-up', run: async (ctx) => ({ hello: (ctx.job.payload as { name?: string } | null)?.name ?? null }) },
      { name: 'flaky', run: async () => { throw new Error('always'); }, retry: { maxAttempts: 1 }, quarantine: { failures: 1 } },
      { name: 'approve', remote: true },
    ],
    rateLimit: { enabled: false },
  });
  base = await listen(node);
  for (const scope of ['read', 'produce', 'work', 'resume'] as const) keys[scope] = await keyWith(node, [scope]);
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await node?.close();
});

async function connect(key: string): Promise<Client> {
  const client = new Client({ name: 'drover-test', version: '1.0.0' });
  clients.push(client);
  await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { requestInit: { headers: { authorization: `Bearer ${key}` } } }));
  return client;
}

type ToolAnswer = { isError?: boolean; structuredContent?: any; content: Array<{ type: string; text?: string }> };
const call = async (client: Client, name: string, args: Record<string, unknown> = {}) => (await client.callTool({ name, arguments: args })) as ToolAnswer;

describe('Drover as an MCP server', () => {
  it('lists its tools with the HTTP routes\' own input schemas', async () => {
    const client = await connect(keys.read);
    expect(client.getServerVersion()?.name).toBe('drover');
    const { tools } = await client.listTools();
    const schemas = Object.fromEntries(tools.map((t) => [t.name, t.inputSchema]));
    expect(Object.keys(schemas)).toEqual(['send_event', 'enqueue_job', 'get_job', 'list_jobs', 'list_handlers', 'list_interrupts', 'get_interrupt', 'resume_interrupt', 'reset_handler']);
    // The very schemas the routes validate with (a change to a route's schema changes the tool).
    expect(schemas.send_event).toEqual(JSON.parse(JSON.stringify(eventSchema)));
    expect(schemas.enqueue_job).toEqual(JSON.parse(JSON.stringify(jobSchema)));
    expect(schemas.get_job).toEqual(JSON.parse(JSON.stringify(idParam)));
    expect(schemas.list_jobs).toEqual(JSON.parse(JSON.stringify(listQuery)));
    expect(schemas.reset_handler).toEqual(JSON.parse(JSON.stringify(nameParam)));
    expect(schemas.list_interrupts).toEqual(JSON.parse(JSON.stringify(interruptList)));
    expect(schemas.resume_interrupt).toMatchObject({ required: ['id', 'input'], properties: { id: interruptId.properties.id, input: resumeBody.properties.input } });
    expect(tools.find((t) => t.name === 'reset_handler')!.description).toContain('scope: admin');
  });

  it('calls every tool with an admin key: send, enqueue, get, list, handlers with breaker and quarantine, reset', async () => {
    const client = await connect(keys.admin);
    const sent = await call(client, 'send_event', { name: 'user.signed-up', data: { plan: 'pro' }, id: 'evt-mcp-1' });
    expect(sent.isError).toBeUndefined();
    expect(sent.structuredContent).toMatchObject({ id: 'evt-mcp-1' });

    const enqueued = await call(client, 'enqueue_job', { handler: 'greet', payload: { name: 'Ada' } });
    const jobId = enqueued.structuredContent.id as string;
    expect(jobId).toBeTruthy();
    const done = await waitFor(async () => {
      const got = await call(client, 'get_job', { id: jobId });
      return got.structuredContent.state === 'succeeded' ? got : null;
    }, { message: 'job ran' });
    expect(done.structuredContent.result).toEqual({ hello: 'Ada' });
    expect(JSON.parse(done.content[0]!.text!)).toEqual(done.structuredContent);

    const listed = await call(client, 'list_jobs', { handler: 'greet', state: 'succeeded', limit: 10 });
    expect((listed.structuredContent.jobs as Array<{ id: string }>).map((j) => j.id)).toContain(jobId);

    const flaky = await call(client, 'enqueue_job', { handler: 'flaky' });
    expect(flaky.structuredContent.id).toBeTruthy();
    const flakyView = async () => ((await call(client, 'list_handlers')).structuredContent.handlers as Array<{ name: string; quarantined: boolean; breaker: { state: string } }>).find((h) => h.name === 'flaky')!;
    const quarantined = await waitFor(async () => ((await flakyView()).quarantined ? flakyView() : null), { message: 'flaky quarantined' });
    expect(quarantined.breaker).toMatchObject({ state: expect.any(String) });

    const reset = await call(client, 'reset_handler', { name: 'flaky' });
    expect(reset.isError, reset.content[0]?.text).toBeUndefined();
    expect(reset.structuredContent).toMatchObject({ name: 'flaky', quarantined: false });
    expect((await flakyView()).quarantined).toBe(false);

    // Bad input is the route's answer: a problem, as a tool error.
    const bad = await call(client, 'send_event', { data: {} });
    expect(bad.isError).toBe(true);
    expect(bad.structuredContent.type).toBe('https://drover.dev/problems/validation');
    const unknown = await call(client, 'get_job', { id: '999999999' });
    expect(unknown.isError).toBe(true);
    expect(unknown.structuredContent.type).toBe('https://drover.dev/problems/not-found');
  });

  it('the key\'s scopes decide: a read key cannot send events, a produce key cannot reset or list handlers', async () => {
    const reader = await connect(keys.read);
    const refused = await call(reader, 'send_event', { name: 'user.signed-up' });
    expect(refused.isError).toBe(true);
    expect(refused.structuredContent).toMatchObject({ status: 403, type: 'https://drover.dev/problems/forbidden' });
    expect((await call(reader, 'reset_handler', { name: 'greet' })).structuredContent.status).toBe(403);
    expect((await call(reader, 'list_handlers')).isError).toBeUndefined();

    const producer = await connect(keys.produce);
    expect((await call(producer, 'send_event', { name: 'user.signed-up' })).isError).toBeUndefined();
    const reset = await call(producer, 'reset_handler', { name: 'greet' });
    expect(reset.isError).toBe(true);
    expect(reset.structuredContent.type).toBe('https://drover.dev/problems/forbidden');
    expect((await call(producer, 'list_handlers')).structuredContent.status).toBe(403);
  });

  it('a resume key lists, reads and resumes interrupts; a read or produce key cannot resume; the schema decides the input', async () => {
    const pending = async (): Promise<string> => {
      const job = (await node.request('POST', '/v1/jobs', { handler: 'approve' })).body.id as string;
      const [leased] = await node.store.lease({ workerId: 'mcp-test', handlers: [{ name: 'approve', max: 1 }], limit: 1, leaseMs: 60_000 });
      expect(leased!.id).toBe(job);
      const now = Date.now();
      const schema = { type: 'object', required: ['approve'], properties: { approve: { type: 'boolean' } }, additionalProperties: false };
      const result = await node.store.suspend(leased!.id, leased!.leaseToken, { step: 'ask', seq: 0, kind: 'interrupt', startedAt: now, wakeAt: now + 3_600_000, prompt: 'ship it?', schema });
      if (!result.ok || !result.suspended) throw new Error(`no interrupt: ${JSON.stringify(result)}`);
      return result.wait.id;
    };
    const id = await pending();
    const approver = await connect(keys.resume);
    const listed = await call(approver, 'list_interrupts', { state: 'pending' });
    expect(listed.isError, listed.content[0]?.text).toBeUndefined();
    expect(JSON.stringify(listed.structuredContent)).toContain(id);
    const shown = await call(approver, 'get_interrupt', { id });
    expect(shown.structuredContent).toMatchObject({ id, prompt: 'ship it?' });

    for (const key of [keys.read, keys.produce]) {
      const refused = await call(await connect(key), 'resume_interrupt', { id, input: { approve: true } });
      expect(refused.structuredContent).toMatchObject({ status: 403, type: 'https://drover.dev/problems/forbidden' });
    }
    const invalid = await call(approver, 'resume_interrupt', { id, input: { approve: 'yes' } });
    expect(invalid.isError).toBe(true);
    expect(invalid.structuredContent.type).toBe('https://drover.dev/problems/validation');
    const resumed = await call(approver, 'resume_interrupt', { id, input: { approve: true } });
    expect(resumed.isError, resumed.content[0]?.text).toBeUndefined();
    const again = await call(approver, 'resume_interrupt', { id, input: { approve: true } });
    expect(again.structuredContent.status).toBe(409);
    // A resume key has no other tool: it cannot read jobs or send events.
    expect((await call(approver, 'send_event', { name: 'user.signed-up' })).structuredContent.status).toBe(403);
  });

  it('a work key, an unknown key and no key cannot connect (403, 401, 401)', async () => {
    for (const [key, status] of [[keys.work, 403], ['drv_never_issued_key_0000000000', 401], [null, 401]] as const) {
      const res = await fetch(`${base}/mcp`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(key ? { authorization: `Bearer ${key}` } : {}) },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      });
      expect(res.status).toBe(status);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    }
    const get = await fetch(`${base}/mcp`, { headers: { authorization: `Bearer ${keys.read}` } });
    expect(get.status).toBe(405);
    // What is not a JSON-RPC message, or names a protocol version the server does not speak, is a problem like any route's.
    const post = (body: string, headers: Record<string, string> = {}) =>
      fetch(`${base}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${keys.read}`, ...headers }, body });
    for (const [res, status] of [
      [await post('{"hello":"world"}'), 422],
      [await post('[]'), 422],
      [await post('{"jsonrpc":"2.0","id":1,"method":"tools/list"}', { 'mcp-protocol-version': '1999-01-01' }), 400],
    ] as const) {
      expect(res.status).toBe(status);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    }
    // A client that accepts only JSON is served (every answer is JSON).
    const lenient = await post('{"jsonrpc":"2.0","id":1,"method":"tools/list"}', { accept: 'application/json' });
    expect(lenient.status).toBe(200);
    expect(((await lenient.json()) as { result: { tools: unknown[] } }).result.tools).toHaveLength(9);
  });

  it('records every tool call in the audit trail with the caller\'s key, without the arguments', async () => {
    const client = await connect(keys.produce);
    await call(client, 'send_event', { name: 'user.signed-up', data: { secretish: 'payload-value-31337' } });
    const records = (await node.request('GET', '/v1/audit?limit=200')).body.records as Array<{ action: string; actor: string; target: string; after: any }>;
    const calls = records.filter((r) => r.action === 'mcp.tool-call');
    expect(calls.length).toBeGreaterThanOrEqual(10);
    const mine = calls.find((r) => r.target === 'mcp:send_event' && r.after.status === 202 && r.actor !== 'anonymous' && r.actor !== undefined);
    expect(mine).toBeDefined();
    expect(calls.some((r) => r.after.status === 403 && r.after.problem === 'https://drover.dev/problems/forbidden')).toBe(true);
    expect(JSON.stringify(calls)).not.toContain('payload-value-31337');
    expect(records.some((r) => r.action === 'handler.reset' && r.target === 'handler:flaky')).toBe(true);
  });
});
