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

export function registerSecurityHeaders(app: FastifyInstance, options: { tls: boolean }): void {
  // onRequest, not onSend: hijacked responses (the SSE stream) copy the headers set so far, and routes may still override.
  // A callback hook, not an async one: it never waits, and every request would pay a promise for it.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('cache-control', 'no-store');
    if (!request.url.startsWith('/console')) {
      reply.header('content-security-policy', API_CSP);
      reply.header('x-frame-options', 'DENY');
    }
    if (options.tls) reply.header('strict-transport-security', HSTS);
    done();
  });
}
