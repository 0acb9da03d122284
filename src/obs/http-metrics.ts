/**
 * HTTP metrics for every route through one `onResponse` hook, labelled by the
 * route template (`/v1/jobs/:id`), never the raw path: anything that matched
 * no route is `route="unmatched"`, so a scanner probing random paths adds no
 * series. Methods outside the standard set collapse into `other`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { DroverMetrics } from './metrics.js';
import type { CounterSeries, HistogramSeries } from './series.js';

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** The bounded route label of a request. */
export function routeLabel(request: FastifyRequest): string {
  return request.routeOptions.url ?? 'unmatched';
}

/**
 * @example
 * registerHttpMetrics(app, metrics); // before the routes, so it sees every one
 */
export function registerHttpMetrics(app: FastifyInstance, metrics: DroverMetrics): void {
  const record = httpRecorder(metrics);
  app.addHook('onResponse', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    record(request.method, routeLabel(request), reply.statusCode, reply.elapsedTime);
    done();
  });
}

/**
 * Count one answered request (`route`: the template, or `unmatched`) and its duration in ms: the Fastify hook
 * above, and the worker-only probe server without Fastify.
 */
export function httpRecorder(metrics: DroverMetrics): (method: string, route: string, status: number, elapsedMs: number) => void {
  const series = new Map<string, { count: CounterSeries; duration: HistogramSeries }>();
  return (requestMethod, route, status, elapsedMs) => {
    const method = METHODS.has(requestMethod) ? requestMethod : 'other';
    const key = `${method} ${status} ${route}`;
    let s = series.get(key);
    if (!s) {
      const code = String(status);
      s = { count: metrics.httpRequests.series(method, route, code), duration: metrics.httpDuration.series(method, route, code) };
      series.set(key, s);
    }
    s.count.inc();
    s.duration.observe(elapsedMs / 1000);
  };
}
