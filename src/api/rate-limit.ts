/**
 * Rate limits per API key and per route (@fastify/rate-limit, in-memory fixed
 * windows): the counter key is `<key id or client IP> <METHOD> <route>`, so a
 * flood of event posts does not also lock the same key out of reading jobs.
 * `rateLimit.max` applies to every route unless `rateLimit.routes` names it.
 * Public routes (probes, the OpenAPI document, metrics) are never limited.
 *
 * The limiter runs as a route-level `onRequest` hook, after authentication
 * (an app-level hook), so it knows the key, and before the body is parsed, so
 * an over-limit client costs no parsing. Over the limit: 429 problem+json
 * `rate-limited` with `Retry-After` and the draft-standard `RateLimit-*`
 * headers, which also go out on every limited response.
 */
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ResolvedConfig } from '../core/config.js';
import { DroverError } from '../core/errors.js';

function routeKey(request: FastifyRequest): string {
  return `${request.method} ${request.routeOptions.url ?? request.url.split('?')[0]}`;
}

function isPublic(request: FastifyRequest): boolean {
  const declared = request.routeOptions.config?.scope;
  return declared === undefined || declared === 'public' || (Array.isArray(declared) && declared.includes('public'));
}

export async function registerRateLimit(app: FastifyInstance, settings: ResolvedConfig['rateLimit']): Promise<void> {
  if (!settings.enabled) return;
  const routes = new Map(Object.entries(settings.routes));
  await app.register(rateLimit, {
    global: true,
    hook: 'onRequest',
    enableDraftSpec: true,
    timeWindow: settings.windowMs,
    max: (request: FastifyRequest) => routes.get(routeKey(request)) ?? settings.max,
    // Counters per key and route; bounded LRU so key-guessing floods cannot grow memory without limit.
    cache: 50_000,
    keyGenerator: (request: FastifyRequest) => `${request.apiKey ? `key:${request.apiKey.id}` : `ip:${request.ip}`} ${routeKey(request)}`,
    allowList: (request: FastifyRequest) => isPublic(request),
    errorResponseBuilder: (_request: FastifyRequest, context: { max: number; ttl: number }) => {
      const seconds = Math.max(1, Math.ceil(context.ttl / 1000));
      return new DroverError('rate_limited', `more than ${context.max} requests in ${settings.windowMs} ms to this route with this key; retry in ${seconds} s`, {
        retryAfterSeconds: seconds,
        extensions: { limit: context.max, windowMs: settings.windowMs },
      });
    },
  });
}
