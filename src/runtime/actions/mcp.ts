/**
 * The `mcp` action: call one tool on an MCP server over Streamable HTTP with
 * the official SDK's client, arguments from a JSON template. The tool's
 * result (`content`, `structuredContent`) is the job's result; a result with
 * `isError` fails the attempt with the tool's text. Each delivery is one
 * short session (initialize, call, close), through the SSRF-guarded fetch.
 */
import { DroverError, toError } from '../../core/errors.js';
import { lazy } from '../../core/lazy.js';
import { credentialParts, redactUrl, redactValues } from '../../core/redact.js';
import { compileJsonTemplate, renderJsonTemplate } from '../../core/template.js';
import { VERSION } from '../../version.js';
import { ActionFailure, checkTimeout, checkUrl, statusFailure, templateScope, TEMPLATE_ROOTS, timeoutOf, type ActionKind, type StoredActionBase } from './action.js';
import { guardedFetch } from './net.js';
import { checkSecretRef, revealSecret, secretRefView, secretValue, type SecretRef } from './secret-ref.js';

export interface McpAction extends StoredActionBase {
  type: 'mcp';
  url: string;
  tool: string;
  /** A JSON template: the tool's arguments. */
  arguments: Record<string, unknown>;
  /** An auth header (default `Authorization`) whose value is a secret reference; null: none. */
  auth: { header: string; value: SecretRef } | null;
}

/**
 * The MCP SDK's client, imported at the first delivery: a node with no MCP
 * action never loads it (~20 MiB of memory; issue 24, worker RSS).
 */
type McpClientSdk = Awaited<ReturnType<typeof importMcpClientSdk>>;
async function importMcpClientSdk() {
  const [client, transport, types] = await Promise.all([
    import('@modelcontextprotocol/sdk/client/index.js'),
    import('@modelcontextprotocol/sdk/client/streamableHttp.js'),
    import('@modelcontextprotocol/sdk/types.js'),
  ]);
  return { ...client, ...transport, ...types };
}
const mcpClientSdk = lazy(importMcpClientSdk);
/** Most characters of a tool's error text kept in the job's error. */
const ERROR_TEXT_CHARS = 1000;

export const mcpAction: ActionKind<McpAction> = {
  type: 'mcp',
  handler: 'drover.mcp',

  async create(input, ctx) {
    const url = await checkUrl(input.url, 'action.url', ctx);
    const args = (input.arguments ?? {}) as Record<string, unknown>;
    compileJsonTemplate(args, 'action.arguments', TEMPLATE_ROOTS);
    const auth = input.auth as { header?: string; value: unknown } | undefined;
    const header = auth?.header;
    if (header !== undefined && /^(host|content-type|content-length|accept|mcp-session-id|mcp-protocol-version)$/i.test(header)) {
      throw new DroverError('validation', `action.auth.header: ${header} is set by the MCP client`);
    }
    return {
      type: 'mcp',
      url: url.toString(),
      tool: String(input.tool),
      arguments: args,
      auth: auth ? { header: header ?? 'Authorization', value: checkSecretRef(auth.value, 'action.auth.value') } : null,
      timeoutMs: checkTimeout(input.timeoutMs, ctx),
    };
  },

  parse: (stored) => stored,

  target: (action) => new URL(action.url).host,

  view: (action) => ({ type: 'mcp', url: redactUrl(action.url), tool: action.tool, arguments: action.arguments, auth: action.auth && { header: action.auth.header, value: secretRefView(action.auth.value) }, timeoutMs: action.timeoutMs }),

  credentials(action) {
    const url = new URL(action.url);
    const auth = action.auth ? secretValue(action.auth.value) : null;
    return [...(auth === null ? [] : credentialParts(auth)), ...url.searchParams.values()].filter((v) => v.length >= 4);
  },

  async deliver(action, delivery) {
    const timeoutMs = timeoutOf(action, delivery);
    const signal = AbortSignal.any([delivery.signal, AbortSignal.timeout(timeoutMs)]);
    const headers: Record<string, string> = action.auth ? { [action.auth.header]: revealSecret(action.auth.value, 'action.auth.value') } : {};
    const args = renderJsonTemplate(compileJsonTemplate(action.arguments, 'action.arguments', TEMPLATE_ROOTS), templateScope(delivery)) as Record<string, unknown>;
    const mcp = await mcpClientSdk();
    const { Client, StreamableHTTPClientTransport } = mcp;
    const client = new Client({ name: 'drover', version: VERSION });
    const transport = new StreamableHTTPClientTransport(new URL(action.url), {
      requestInit: { headers },
      fetch: guardedFetch(delivery.config.webhooks.allowPrivateNetworks),
      // One call per delivery: a lost stream is a failed attempt, retried by the job's policy.
      reconnectionOptions: { maxRetries: 0, initialReconnectionDelay: 1000, maxReconnectionDelay: 1000, reconnectionDelayGrowFactor: 1 },
    });
    const host = new URL(action.url).host;
    try {
      await client.connect(transport, { signal, timeout: timeoutMs });
      const result = await client.callTool({ name: action.tool, arguments: args }, undefined, { signal, timeout: timeoutMs });
      const scrub = (text: string) => redactValues(text, mcpAction.credentials(action));
      if (result.isError) {
        const text = toolText(result.content).slice(0, ERROR_TEXT_CHARS);
        throw new ActionFailure(`MCP tool ${action.tool} on ${host} failed: ${scrub(text) || '(no text)'}`, { targetUp: true, retryable: true });
      }
      const stored = { content: result.content ?? [], ...(result.structuredContent === undefined ? {} : { structuredContent: result.structuredContent }) };
      return JSON.parse(scrub(JSON.stringify(stored))) as unknown;
    } catch (caught) {
      throw classify(mcp, caught, action, host);
    } finally {
      await client.close().catch(() => undefined);
    }
  },
};

/** The text parts of a tool result, joined. */
function toolText(content: unknown): string {
  if (!Array.isArray(content)) return '';
  return content
    .filter((c): c is { type: 'text'; text: string } => typeof c === 'object' && c !== null && (c as { type?: unknown }).type === 'text')
    .map((c) => c.text)
    .join('\n');
}

/** An SDK error as an action failure: HTTP statuses as for any action, JSON-RPC errors by code. */
function classify({ StreamableHTTPError, McpError, ErrorCode }: McpClientSdk, caught: unknown, action: McpAction, host: string): Error {
  const error = toError(caught);
  if (error instanceof ActionFailure) return error;
  for (let e: unknown = error; e instanceof Error; e = e.cause) if (e.name === 'ForbiddenTargetError') return e;
  const scrub = (text: string) => redactValues(text, mcpAction.credentials(action));
  if (error instanceof StreamableHTTPError && typeof error.code === 'number' && error.code >= 300) {
    return statusFailure(`MCP server ${host}`, error.code, scrub(error.message).slice(0, 200));
  }
  if (error instanceof McpError) {
    // JSON-RPC errors that a retry cannot fix: the tool or its arguments are wrong.
    const permanent = error.code === ErrorCode.MethodNotFound || error.code === ErrorCode.InvalidParams || error.code === ErrorCode.InvalidRequest;
    return new ActionFailure(`MCP tool ${action.tool} on ${host}: ${scrub(error.message)}`, { targetUp: error.code !== ErrorCode.RequestTimeout, retryable: !permanent });
  }
  return new Error(`MCP server ${host}: ${scrub(error.message)}`, { cause: error });
}
