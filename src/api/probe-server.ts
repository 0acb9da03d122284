/**
 * The worker-only node's HTTP server (`drover start --worker-only`): the
 * probes and `/metrics` on `node:http`, without Fastify. Fastify with its
 * router, schema compilers (ajv), serializers and semver is about 200 modules
 * and 10+ MiB of a worker's memory, for three GET routes (issue 24, worker
 * RSS). The answers are the API's own (routes/probes.ts, shared with the
 * Fastify routes), and so are what the Fastify metrics server adds around
 * them: the security headers, problem+json for unknown routes and failures,
 * `drover_http_*` metrics by route, request ids `req-1`, `req-2`, …, HEAD for
 * every GET, and 503 for requests that arrive once it is closing.
 */
import { lookup } from 'node:dns/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { DroverError } from '../core/errors.js';
import { httpRecorder } from '../obs/http-metrics.js';
import type { Logger } from '../obs/logger.js';
import type { DroverMetrics } from '../obs/metrics.js';
import { PROBLEM_CONTENT_TYPE, problemBody, routeNotFound } from './problem.js';
import type { ProbeAnswer, ProbeHandler } from './routes/probes.js';
import { setSecurityHeaders } from './security-headers.js';

/** Fastify's default, which the worker-only port had before it moved to `node:http`. */
const KEEP_ALIVE_MS = 72_000;
/** What Fastify answers once it is closing (`return503OnClosing`). */
const CLOSING_BODY = '{"error":"Service Unavailable","message":"Service Unavailable","statusCode":503}';
const MAX_REQUEST_ID = 2_147_483_647;

export interface ProbeServerDeps {
  routes: ReadonlyMap<string, ProbeHandler>;
  metrics: DroverMetrics;
  logger: Logger;
}

/**
 * A server that never listens until asked, like `buildServer`.
 *
 * @example
 * const probes = new ProbeServer({ routes: probeRoutes({ runtime, metrics, readiness }), metrics, logger });
 * const url = await probes.listen({ host: '127.0.0.1', port: 9464 });
 * await probes.close();
 */
export class ProbeServer {
  readonly server: Server;
  readonly #deps: ProbeServerDeps;
  readonly #record: ReturnType<typeof httpRecorder>;
  /** More sockets on the same port: `localhost` binds each of its addresses, as Fastify does. */
  readonly #extra: Server[] = [];
  #nextId = 0;
  #closing = false;

  constructor(deps: ProbeServerDeps) {
    this.#deps = deps;
    this.#record = httpRecorder(deps.metrics);
    this.server = this.#create();
  }

  /** Listen, and return the URL (`http://127.0.0.1:9464`), as Fastify's `listen` does. */
  async listen(options: { host: string; port: number }): Promise<string> {
    await listenOn(this.server, options.host, options.port);
    const address = this.server.address() as AddressInfo;
    if (options.host === 'localhost') {
      const all = await lookup('localhost', { all: true }).catch(() => []);
      for (const { address: other } of all) {
        if (other === address.address) continue;
        const extra = this.#create();
        // Like Fastify, an address that cannot be bound (no IPv6 here) is skipped.
        if (await listenOn(extra, other, address.port).then(() => true, () => false)) this.#extra.push(extra);
      }
    }
    const url = `http://${hostOf(address)}:${address.port}`;
    this.#deps.logger.info(`Server listening at ${url}`);
    return url;
  }

  /** Stop accepting connections, answer 503 to requests on open ones, and resolve once every socket is closed. */
  async close(): Promise<void> {
    this.#closing = true;
    await Promise.all([this.server, ...this.#extra].map(closeServer));
  }

  #create(): Server {
    const server = createServer((request, response) => this.#handle(request, response));
    server.keepAliveTimeout = KEEP_ALIVE_MS;
    return server;
  }

  #handle(request: IncomingMessage, response: ServerResponse): void {
    request.resume(); // a body on a probe is read and ignored
    if (this.#closing) {
      response.writeHead(503, { 'content-type': 'application/json', 'content-length': String(CLOSING_BODY.length), connection: 'close' });
      response.end(CLOSING_BODY);
      return;
    }
    const started = performance.now();
    this.#nextId = (this.#nextId + 1) & MAX_REQUEST_ID;
    const requestId = `req-${this.#nextId.toString(36)}`;
    const url = request.url ?? '/';
    const method = request.method ?? 'GET';
    setSecurityHeaders(url, false, (name, value) => response.setHeader(name, value));
    const path = url.split('?')[0] ?? url;
    const probe = method === 'GET' || method === 'HEAD' ? this.#deps.routes.get(path) : undefined;
    response.once('finish', () => this.#record(method, probe ? path : 'unmatched', response.statusCode, performance.now() - started));
    if (!probe) {
      sendProblem(response, method, routeNotFound(method, url), url, requestId);
      return;
    }
    probe().then(
      (answer) => send(response, method, answer),
      (error: unknown) => {
        this.#deps.logger.error({ err: error, req_id: requestId }, 'request failed');
        sendProblem(response, method, new DroverError('internal', 'internal error; the request id in this response finds it in the logs', { cause: error }), url, requestId);
      },
    );
  }
}

function send(response: ServerResponse, method: string, answer: ProbeAnswer): void {
  const [body, type] = 'json' in answer ? [JSON.stringify(answer.json), 'application/json; charset=utf-8'] : [answer.text, answer.contentType];
  response.statusCode = answer.status;
  response.setHeader('content-type', type);
  response.setHeader('content-length', Buffer.byteLength(body));
  response.end(method === 'HEAD' ? undefined : body);
}

function sendProblem(response: ServerResponse, method: string, error: DroverError, url: string, requestId: string): void {
  send(response, method, { status: error.status, text: JSON.stringify(problemBody(error, url, requestId)), contentType: PROBLEM_CONTENT_TYPE });
}

function listenOn(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function closeServer(server: Server): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    // Kept-alive sockets with no request in flight would hold close() for the keep-alive timeout.
    server.closeIdleConnections();
  });
}

/** The host part of the URL `listen` returns, as Fastify writes it: IPv6 in brackets, 0.0.0.0 as the first internal IPv4 address. */
function hostOf(address: AddressInfo): string {
  if (address.address.includes(':')) return `[${address.address}]`;
  if (address.address !== '0.0.0.0') return address.address;
  const ipv4 = Object.values(networkInterfaces())
    .flatMap((list) => list ?? [])
    .filter((i) => i.family === 'IPv4');
  return (ipv4.find((i) => i.internal) ?? ipv4[0])?.address ?? address.address;
}
