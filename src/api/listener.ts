/**
 * How the API's HTTP server treats connections: timeouts, a connection cap and
 * optional TLS. Without timeouts a client that sends its body one byte at a
 * time holds a socket (and memory) forever; without a cap, enough of them
 * exhaust file descriptors and the node stops accepting its own workers.
 *
 * - `requestTimeoutMs`: the whole request, headers and body, must arrive in
 *   time, else 408 and the socket closes. It ends once the request is in, so
 *   a long answer (the SSE stream, a long-polling lease) is not cut.
 * - `headersTimeoutMs`: the headers alone (slowloris), counted from the
 *   connection's start, so it also closes connections that never send.
 * - `keepAliveTimeoutMs`: an idle kept-alive connection between requests.
 * - `connectionTimeoutMs`: a socket silent this long while its answer is
 *   pending (0, the default: off; the header timeout already closes sockets
 *   that never send, the keep-alive timeout idle ones between requests).
 * - `maxConnections`: sockets past it are closed as they are accepted.
 * - `trustProxy`: the reverse proxies whose `X-Forwarded-For` to believe.
 */
import { readFileSync, unwatchFile, watchFile, type Stats } from 'node:fs';
import type { Server as HttpsServer } from 'node:https';
import type { FastifyInstance } from 'fastify';
import type { ResolvedConfig } from '../core/config.js';
import { DroverError } from '../core/errors.js';

type ServerConfig = ResolvedConfig['server'];

export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

/** Read the PEM files; a config error naming the file when one is unreadable. */
export function readTls(files: TlsFiles): { cert: Buffer; key: Buffer } {
  const read = (path: string, key: string) => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw new DroverError('config_invalid', `server.tls.${key}: cannot read "${path}" (${(error as Error).message}); give a readable PEM file`, { cause: error });
    }
  };
  return { cert: read(files.certFile, 'certFile'), key: read(files.keyFile, 'keyFile') };
}

/**
 * The Fastify options that set timeouts (and TLS when configured). Node checks
 * request and header timeouts on an interval (30 s by default, which would let
 * a slow body live 30 s past its timeout); check at a quarter of the shorter one.
 *
 * @example
 * Fastify({ ...listenerOptions(config.server), logger: false });
 */
export function listenerOptions(server: ServerConfig) {
  const checkEveryMs = Math.max(250, Math.min(5_000, Math.floor(Math.min(server.headersTimeoutMs, server.requestTimeoutMs) / 4)));
  const http = { connectionsCheckingInterval: checkEveryMs, headersTimeout: server.headersTimeoutMs, requestTimeout: server.requestTimeoutMs };
  return {
    requestTimeout: server.requestTimeoutMs,
    keepAliveTimeout: server.keepAliveTimeoutMs,
    connectionTimeout: server.connectionTimeoutMs,
    // request.ip (per-address auth failure and rate limits) comes from X-Forwarded-For only when a listed proxy sent it.
    ...(server.trustProxy.length > 0 ? { trustProxy: server.trustProxy } : {}),
    ...(server.tls ? { https: { ...http, ...readTls(server.tls) } } : { http }),
  };
}

/** Settings Fastify has no option for; call once, before listening. */
export function applyListenerLimits(app: FastifyInstance, server: ServerConfig): void {
  app.server.headersTimeout = server.headersTimeoutMs;
  app.server.maxConnections = server.maxConnections;
  let lastWarned = 0;
  app.server.on('drop', () => {
    // One line a minute at most: a flood of refused connections must not become a flood of log lines.
    const now = Date.now();
    if (now - lastWarned < 60_000) return;
    lastWarned = now;
    app.log.warn({ max_connections: server.maxConnections }, 'refusing connections: server.maxConnections reached');
  });
}

/**
 * Load the certificate and key again (after SIGHUP, when they were renewed):
 * new connections get them, open ones keep theirs. A file that cannot be read
 * or parsed leaves the current certificate in place and throws.
 */
export function reloadTls(app: FastifyInstance, files: TlsFiles): void {
  (app.server as unknown as HttpsServer).setSecureContext(readTls(files));
}

/** How often the TLS files are checked for a change, and how long to wait for the pair to settle. */
const TLS_POLL_MS = 2_000;
const TLS_SETTLE_MS = 500;

/**
 * Call `onChange` when the certificate or key file changes (renewed in place,
 * or a Kubernetes secret's symlink swapped): polling `stat`, which follows
 * symlinks, rather than inotify, which loses track of a replaced file. A
 * renewal writes both files; waiting for them to settle avoids loading a
 * new certificate with the old key. Returns a function that stops watching.
 */
export function watchTls(files: TlsFiles, onChange: () => void): () => void {
  let settle: NodeJS.Timeout | undefined;
  const listener = (current: Stats, previous: Stats) => {
    if (current.mtimeMs === previous.mtimeMs && current.ino === previous.ino && current.size === previous.size) return;
    clearTimeout(settle);
    settle = setTimeout(onChange, TLS_SETTLE_MS);
    settle.unref();
  };
  for (const path of [files.certFile, files.keyFile]) watchFile(path, { interval: TLS_POLL_MS, persistent: false }, listener);
  return () => {
    clearTimeout(settle);
    for (const path of [files.certFile, files.keyFile]) unwatchFile(path, listener);
  };
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/**
 * At start, say what an operator exposing the API beyond loopback should
 * change: plain HTTP carries keys in clear, and `/metrics` on the API port
 * tells anyone who can reach it the handler names and queue depths.
 */
export function warnIfExposed(config: ResolvedConfig, logger: { warn(obj: object, msg: string): void }): void {
  if (LOOPBACK.has(config.server.host)) return;
  // A listed reverse proxy (server.trustProxy) is where TLS ends; no warning then.
  if (config.server.tls === null && config.server.trustProxy.length === 0) {
    logger.warn({ host: config.server.host }, 'the API listens beyond loopback over plain HTTP; API keys cross the network in clear unless a TLS proxy is in front (server.tls; docs/security.md)');
  }
  if (config.metrics.port === null && config.metrics.onApiPort) {
    logger.warn({ host: config.server.host }, '/metrics is served unauthenticated on the exposed API port; set metrics.port (a loopback listener) or metrics.onApiPort: false (docs/security.md)');
  }
}
