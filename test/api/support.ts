/**
 * Helpers for API tests: requests as a given key (or none), keys per scope,
 * a real listening socket when a test needs one (SSE, the SDK), and a small
 * independent SSE reader so server tests do not depend on the SDK's parser.
 */
import { get as httpGet, type ClientRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ApiScope } from '../../src/core/types.js';
import { ADMIN_KEY, type TestNode } from '../helpers/node.js';

export interface Answer {
  status: number;
  body: any;
  headers: Record<string, unknown>;
}

/**
 * `app.inject()` as `key` (null: no Authorization header). `GET /v1/stream`
 * answers with a stream that never ends: only its status and headers are read.
 */
export async function injectAs(node: TestNode, key: string | null, method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const streaming = method === 'GET' && url.startsWith('/v1/stream');
  const response = await node.app.inject({
    method: method as 'GET',
    url,
    headers: {
      ...(key === null ? {} : { authorization: `Bearer ${key}` }),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    ...(body === undefined ? {} : { payload: typeof body === 'string' ? body : JSON.stringify(body) }),
    ...(streaming ? { payloadAsStream: true } : {}),
  });
  if (streaming && response.statusCode === 200) {
    response.stream().destroy();
    return { status: response.statusCode, body: null, headers: response.headers };
  }
  const text = streaming ? await readAll(response.stream()) : response.body;
  return { status: response.statusCode, body: text ? parse(text) : null, headers: response.headers };
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += String(chunk);
  return text;
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Create a key with these scopes through the API; returns its secret. */
export async function keyWith(node: TestNode, scopes: ApiScope[], name = `test-${scopes.join('-')}`): Promise<string> {
  const created = await node.request('POST', '/v1/keys', { name, scopes });
  if (created.status !== 201) throw new Error(`could not create a key: ${created.status} ${JSON.stringify(created.body)}`);
  return created.body.secret as string;
}

/** Listen on an ephemeral port on loopback; the node's close() closes it. */
export async function listen(node: TestNode): Promise<string> {
  await node.app.listen({ host: '127.0.0.1', port: 0 });
  const address = node.app.server.address() as AddressInfo;
  return `http://127.0.0.1:${address.port}`;
}

export interface SseFrame {
  id?: string;
  event?: string;
  data?: string;
  comments: string[];
}

/** A raw SSE connection: collects frames as they arrive. */
export interface SseConnection {
  status: number;
  headers: Headers;
  frames: SseFrame[];
  /** Frames with an `event:` (not bare comments). */
  messages(): Array<{ id?: string; event: string; data: any }>;
  close(): void;
  closed: Promise<void>;
}

export async function openSse(base: string, path: string, key: string | null = ADMIN_KEY, headers: Record<string, string> = {}): Promise<SseConnection> {
  // node:http without an agent, not fetch: a pooled client may open a spare socket that keeps the server's close waiting.
  const frames: SseFrame[] = [];
  let request: ClientRequest | undefined;
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    request = httpGet(base + path, { agent: false, headers: { accept: 'text/event-stream', ...(key === null ? {} : { authorization: `Bearer ${key}` }), ...headers } }, resolve);
    request.on('error', reject);
  });
  const closed = new Promise<void>((resolve) => {
    let buffer = '';
    let frame: SseFrame = { comments: [] };
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => {
      buffer += chunk;
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        if (line === '') {
          frames.push(frame);
          frame = { comments: [] };
        } else if (line.startsWith(':')) {
          frame.comments.push(line.slice(1));
        } else {
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'id') frame.id = value;
          else if (field === 'event') frame.event = value;
          else if (field === 'data') frame.data = frame.data === undefined ? value : `${frame.data}\n${value}`;
        }
      }
    });
    response.on('close', () => resolve());
    response.on('error', () => resolve());
  });
  const responseHeaders = new Headers();
  for (const [name, value] of Object.entries(response.headers)) if (typeof value === 'string') responseHeaders.set(name, value);
  return {
    status: response.statusCode ?? 0,
    headers: responseHeaders,
    frames,
    messages: () =>
      frames
        .filter((f) => f.event !== undefined)
        .map((f) => ({ ...(f.id === undefined ? {} : { id: f.id }), event: f.event!, data: f.data === undefined ? null : JSON.parse(f.data) })),
    close: () => request?.destroy(),
    closed,
  };
}
