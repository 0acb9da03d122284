/**
 * Security headers on every response. The API serves JSON, SSE and metrics
 * text, never HTML meant to run: so no sniffing, no caching of answers that may
 * hold payloads or keys, no referrer, and a Content-Security-Policy that lets
 * nothing load or frame it. The web console (`/console`, when present) sets
 * its own policy. Strict-Transport-Security only when this node serves TLS:
 * over plain HTTP browsers ignore it, and behind a TLS-terminating proxy the
 * proxy owns it.
 *
 * A hook of our own rather than @fastify/helmet: helmet's defaults are made for
 * HTML sites (a `'self'` script policy, cross-origin isolation headers) and
 * would need overriding per header to get this short, API-shaped list.
 */
import type { FastifyInstance } from 'fastify';

const API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
/** One year, the value HSTS preload lists expect. */
const HSTS = 'max-age=31536000; includeSubDomains';

/**
 * The headers for a request to `url`, through `set` (Fastify's `reply.header`, or `node:http`'s `setHeader`
 * in the worker-only probe server).
 */
export function setSecurityHeaders(url: string, tls: boolean, set: (name: string, value: string) => unknown): void {
  set('x-content-type-options', 'nosniff');
  set('referrer-policy', 'no-referrer');
  set('cache-control', 'no-store');
  if (!url.startsWith('/console')) {
    set('content-security-policy', API_CSP);
    set('x-frame-options', 'DENY');
  }
  if (tls) set('strict-transport-security', HSTS);
}

export function registerSecurityHeaders(app: FastifyInstance, options: { tls: boolean }): void {
  // onRequest, not onSend: hijacked responses (the SSE stream) copy the headers set so far, and routes may still override.
  // A callback hook, not an async one: it never waits, and every request would pay a promise for it.
  app.addHook('onRequest', (request, reply, done) => {
    setSecurityHeaders(request.url, options.tls, (name, value) => reply.header(name, value));
    done();
  });
}
