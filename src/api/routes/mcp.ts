/**
 * Drover as an MCP server: `POST /mcp`, Streamable HTTP in stateless mode
 * (a server and transport per request, JSON answers), with the official
 * SDK's server. The tools are Drover's own routes (mcp-tools.ts): a call is
 * made as that route's request with the caller's API key, so the key's
 * scopes decide exactly as over HTTP (a read key's `send_event` gets the
 * route's 403 as a tool error), and every call is recorded in the audit
 * trail (`mcp.tool-call`: the tool, its route and the status, never the
 * arguments, which may carry payloads).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { DroverError, toError } from '../../core/errors.js';
import { lazy } from '../../core/lazy.js';
import { recordOperatorAction } from '../../ops/audit/operator-action.js';
import type { Runtime } from '../../runtime/runtime.js';
import { VERSION } from '../../version.js';
import { sendProblem } from '../problem.js';
import { MCP_TOOLS, type DroverTool } from './mcp-tools.js';
import { routeConfig } from './scopes.js';

/** What the MCP route needs from the node: the audit trail (tools reach the rest through their routes). */
export type McpRouteDeps = Pick<Runtime, 'audit'>;

/**
 * A JSON-RPC 2.0 message (or a batch of them): checked by the route, so a
 * malformed one gets a 422 problem like any other route's bad body, not the
 * transport's plain-JSON error.
 */
const rpcMessage = {
  type: 'object',
  required: ['jsonrpc'],
  additionalProperties: false,
  properties: {
    jsonrpc: { type: 'string', enum: ['2.0'] },
    id: { anyOf: [{ type: 'string', maxLength: 200 }, { type: 'integer' }] },
    method: { type: 'string', minLength: 1, maxLength: 200 },
    params: { type: 'object' },
    result: { type: 'object' },
    error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'integer' }, message: { type: 'string' } } },
  },
  anyOf: [{ required: ['method'] }, { required: ['id', 'result'] }, { required: ['id', 'error'] }],
} as const;
const rpcBody = { anyOf: [rpcMessage, { type: 'array', minItems: 1, maxItems: 100, items: rpcMessage }] } as const;

const byName = new Map(MCP_TOOLS.map((t) => [t.name, t]));

/**
 * The MCP SDK, imported at the first `/mcp` request: it (with zod, its JSON
 * Schema converter and a second ajv) is ~20 MiB of a node's memory that a
 * node nobody talks MCP to never needs (issue 24, worker RSS).
 */
async function importMcpServerSdk() {
  const [server, transport, types] = await Promise.all([
    import('@modelcontextprotocol/sdk/server/index.js'),
    import('@modelcontextprotocol/sdk/server/streamableHttp.js'),
    import('@modelcontextprotocol/sdk/types.js'),
  ]);
  return { ...server, ...transport, ...types };
}
const mcpServerSdk = lazy(importMcpServerSdk);

export function mcpRoutes(runtime: McpRouteDeps) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    app.post('/mcp', { config: routeConfig('POST /mcp'), schema: { body: rpcBody } }, async (request, reply) => {
      // Every answer is JSON (enableJsonResponse), so a client that did not say it accepts both is served anyway
      // rather than answered with the transport's 406, which is not problem+json.
      request.raw.headers.accept = 'application/json, text/event-stream';
      const { StreamableHTTPServerTransport, SUPPORTED_PROTOCOL_VERSIONS } = await mcpServerSdk();
      const version = request.headers['mcp-protocol-version'];
      if (version !== undefined && !SUPPORTED_PROTOCOL_VERSIONS.includes(String(version))) {
        throw new DroverError('malformed_request', `mcp-protocol-version ${String(version).slice(0, 40)} is not supported; supported: ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')}`);
      }
      const server = await mcpServer(app, runtime, request);
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
      reply.raw.on('close', () => {
        void transport.close();
        void server.close();
      });
      await server.connect(transport);
      // The transport writes the answer itself; headers set by hooks (request id, security headers) go with it.
      for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) reply.raw.setHeader(name, value);
      reply.hijack();
      await transport.handleRequest(request.raw, reply.raw, request.body);
    });
    // Stateless: no server-initiated stream to open and no session to end.
    const notAllowed = async (request: FastifyRequest, reply: FastifyReply) => {
      reply.header('allow', 'POST');
      return sendProblem(reply, request, new DroverError('method_not_allowed', `${request.method} /mcp: this MCP server is stateless; send JSON-RPC requests with POST`));
    };
    app.get('/mcp', { config: routeConfig('GET /mcp') }, notAllowed);
    app.delete('/mcp', { config: routeConfig('DELETE /mcp') }, notAllowed);
  };
}

/** One MCP server for one HTTP request: its tool calls act with that request's key. */
async function mcpServer(app: FastifyInstance, runtime: McpRouteDeps, request: FastifyRequest): Promise<Server> {
  const { Server, ListToolsRequestSchema, CallToolRequestSchema, McpError, ErrorCode } = await mcpServerSdk();
  const server = new Server({ name: 'drover', version: VERSION }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, async () => ({
    tools: MCP_TOOLS.map((t) => ({ name: t.name, description: t.description, inputSchema: t.inputSchema })),
  }));
  server.setRequestHandler(CallToolRequestSchema, async (call) => {
    const tool = byName.get(call.params.name);
    if (!tool) throw new McpError(ErrorCode.InvalidParams, `no tool "${call.params.name}"; tools: ${MCP_TOOLS.map((t) => t.name).join(', ')}`);
    return callTool(app, runtime, request, tool, call.params.arguments ?? {});
  });
  return server;
}

async function callTool(app: FastifyInstance, runtime: McpRouteDeps, request: FastifyRequest, tool: DroverTool, args: Record<string, unknown>): Promise<CallToolResult> {
  const inner = tool.request(args);
  const response = await app.inject({
    method: inner.method,
    url: inner.url,
    headers: {
      authorization: request.headers.authorization ?? '',
      'x-request-id': String(request.id),
      ...(inner.body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(inner.body === undefined ? {} : { payload: JSON.stringify(inner.body) }),
  });
  const body = parseBody(response.body);
  const isError = response.statusCode >= 400;
  try {
    await recordOperatorAction(runtime, request, {
      action: 'mcp.tool-call',
      target: `mcp:${tool.name}`,
      before: null,
      after: { tool: tool.name, route: tool.route, status: response.statusCode, ...(isError && typeof body === 'object' && body !== null ? { problem: (body as { type?: unknown }).type ?? null } : {}) },
    });
  } catch (caught) {
    // The call happened; an unrecorded call must not look like a failed one to the agent, but it is logged.
    request.log.error({ err: toError(caught), tool: tool.name }, 'mcp tool call not audited');
  }
  return {
    content: [{ type: 'text', text: response.body }],
    ...(typeof body === 'object' && body !== null && !Array.isArray(body) ? { structuredContent: body as Record<string, unknown> } : {}),
    ...(isError ? { isError: true } : {}),
  };
}

function parseBody(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
