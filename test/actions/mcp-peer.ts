/**
 * A real MCP server for the `mcp` action's tests, built with the official
 * SDK (McpServer + Streamable HTTP, stateless: a server and transport per
 * request, as the SDK recommends). It requires `Authorization: Bearer
 * <token>` and records every tool call it receives.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';

export interface McpPeer {
  url: string;
  calls: Array<{ tool: string; args: Record<string, unknown>; authorization: string | undefined }>;
  /** Answer the next `failures` calls of `create_ticket` with isError. */
  failNext(failures: number): void;
  close(): Promise<void>;
}

/** `sse`: answer each request as an SSE stream (the SDK's default) rather than one JSON body. */
export async function startMcpPeer(token: string, options: { sse?: boolean } = {}): Promise<McpPeer> {
  const calls: McpPeer['calls'] = [];
  let failures = 0;
  const build = (authorization: string | undefined) => {
    const server = new McpServer({ name: 'ticketing', version: '1.0.0' });
    server.registerTool(
      'create_ticket',
      {
        description: 'Open a ticket',
        inputSchema: { title: z.string(), priority: z.number().int(), tags: z.array(z.string()).optional() },
        outputSchema: { ticketId: z.string() },
      },
      async (args) => {
        calls.push({ tool: 'create_ticket', args, authorization });
        if (failures > 0) {
          failures--;
          return { isError: true, content: [{ type: 'text', text: `ticket system is read-only right now (token ${token})` }] };
        }
        const ticketId = `T-${calls.length}`;
        return { content: [{ type: 'text', text: `opened ${ticketId}: ${args.title}` }], structuredContent: { ticketId } };
      },
    );
    return server;
  };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.headers.authorization !== `Bearer ${token}`) {
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'unauthorized' }));
      return;
    }
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST' }).end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const mcp = build(req.headers.authorization);
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: options.sse !== true });
      res.on('close', () => {
        void transport.close();
        void mcp.close();
      });
      mcp
        .connect(transport)
        .then(() => transport.handleRequest(req, res, JSON.parse(Buffer.concat(chunks).toString('utf8'))))
        .catch(() => res.writeHead(500).end());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    calls,
    failNext: (n) => (failures = n),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
