/**
 * `GET /v1/stream`: Server-Sent Events of job, handler and queue state
 * changes, optionally filtered by handler, queue or job id.
 *
 * - `:hb` comment every `stream.heartbeatMs` (10 s) so proxies keep it open.
 * - `Last-Event-ID` (header, or `lastEventId` in the query for clients that
 *   cannot set headers) replays what was missed from the node's buffer; when
 *   the id is unknown or older than the buffer, an explicit `event: gap`
 *   comes first and the stream goes on live: resync with the REST API.
 * - A client that does not read (its socket buffer passes 1 MiB) is
 *   disconnected; it reconnects with `Last-Event-ID` and loses nothing the
 *   buffer still holds.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { Runtime } from '../../runtime/runtime.js';
import { formatMessage, matches, type StreamFilter } from '../../obs/stream-hub.js';
import { routeConfig } from './scopes.js';

const MAX_UNREAD_BYTES = 1024 * 1024;
/** Reconnect delay the client is told to use (the SSE `retry:` field). */
const RETRY_MS = 2000;

const listOf = (pattern: string) => ({ type: 'string', minLength: 1, maxLength: 2000, pattern }) as const;

const streamQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    handler: listOf('^[A-Za-z0-9_.:-]+(,[A-Za-z0-9_.:-]+)*$'),
    queue: listOf('^[A-Za-z0-9_.:-]+(,[A-Za-z0-9_.:-]+)*$'),
    job: listOf('^[\\x21-\\x2b\\x2d-\\x7e]+(,[\\x21-\\x2b\\x2d-\\x7e]+)*$'),
    lastEventId: { type: 'string', maxLength: 200 },
  },
} as const;

interface StreamQuery {
  handler?: string;
  queue?: string;
  job?: string;
  lastEventId?: string;
}

/** What the stream routes need from the node (the SSE stream): the runtime satisfies it. */
export type StreamRouteDeps = Pick<Runtime, 'config' | 'stream'>;

export function streamRoutes(runtime: StreamRouteDeps) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    // Subscribed to the lifecycle with the node's other observers (runtime/observers.ts).
    const hub = runtime.stream;
    const open = new Set<ServerResponse>();
    // Open streams would hold `close()` forever: end them first; clients reconnect elsewhere.
    app.addHook('preClose', async () => {
      for (const raw of open) raw.end();
      open.clear();
    });
    app.addHook('onClose', async () => hub.close());

    app.get<{ Querystring: StreamQuery }>(
      '/v1/stream',
      { config: routeConfig('GET /v1/stream'), exposeHeadRoute: false, schema: { querystring: streamQuery, produces: ['text/event-stream'] } },
      async (request, reply) => {
        const filter: StreamFilter = {
          ...(request.query.handler ? { handlers: new Set(request.query.handler.split(',')) } : {}),
          ...(request.query.queue ? { queues: new Set(request.query.queue.split(',')) } : {}),
          ...(request.query.job ? { jobs: new Set(request.query.job.split(',')) } : {}),
        };
        const header = request.headers['last-event-id'];
        const lastEventId = typeof header === 'string' && header !== '' ? header : request.query.lastEventId;

        reply.hijack();
        const raw = reply.raw;
        // A stream is idle between messages by design (its heartbeat keeps proxies open): exempt it from server.connectionTimeoutMs.
        // (inject()'s mock socket has no setTimeout.)
        const socket = request.raw.socket as { setTimeout?: (ms: number) => unknown } | undefined;
        if (typeof socket?.setTimeout === 'function') socket.setTimeout(0);
        raw.writeHead(200, {
          ...(reply.getHeaders() as Record<string, string>),
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-cache, no-transform',
          'x-accel-buffering': 'no',
          // A stream's connection is never reused: closing it with the response keeps it from lingering as
          // keep-alive after shutdown ends the stream (which would hold the server's close for the idle timeout).
          connection: 'close',
        });
        const send = (chunk: string) => {
          if (raw.destroyed || raw.writableEnded) return;
          raw.write(chunk);
          // A reader this far behind is not reading: drop it rather than buffer without bound.
          if (raw.writableLength > MAX_UNREAD_BYTES) raw.destroy();
        };

        // Subscribe before replaying: both happen in this tick, so nothing falls between them.
        const unsubscribe = hub.subscribe((message) => {
          if (matches(message, filter)) send(formatMessage(message));
        });
        let chunk = `retry: ${RETRY_MS}\n: connected; resume with Last-Event-ID\n\n`;
        if (lastEventId !== undefined) {
          const resumed = hub.resume(lastEventId);
          if (resumed.kind === 'gap') {
            chunk += `id: ${resumed.latestId}\nevent: gap\ndata: ${JSON.stringify({ lastEventId: lastEventId.slice(0, 200), reason: resumed.reason })}\n\n`;
          } else {
            for (const message of resumed.messages) if (matches(message, filter)) chunk += formatMessage(message);
          }
        }
        send(chunk);

        const heartbeat = setInterval(() => send(':hb\n\n'), runtime.config.stream.heartbeatMs);
        heartbeat.unref();
        open.add(raw);
        const cleanup = () => {
          clearInterval(heartbeat);
          unsubscribe();
          open.delete(raw);
        };
        raw.on('close', cleanup);
        if (raw.destroyed) cleanup(); // the client left before we got here: 'close' has already fired
      },
    );
  };
}
