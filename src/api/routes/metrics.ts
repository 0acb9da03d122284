/**
 * `GET /metrics`: the Prometheus exposition of this node's registry plus the
 * process metrics. Public like the probes. With `metrics.port` set
 * (`DROVER_METRICS_PORT`) it moves, with a copy of the probes, to a listener of
 * its own (`buildMetricsServer`), so `/metrics` can stay on loopback while the
 * API is exposed. A worker-only node serves the same answers without Fastify
 * (`api/probe-server.ts`).
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Readiness } from '../../obs/health.js';
import { registerHttpMetrics } from '../../obs/http-metrics.js';
import type { DroverMetrics } from '../../obs/metrics.js';
import type { Runtime } from '../../runtime/runtime.js';
import { registerProblemHandlers } from '../problem.js';
import { registerSecurityHeaders } from '../security-headers.js';
import { healthRoutes, sendProbe } from './health.js';
import { metricsProbe } from './probes.js';

export function metricsRoutes(metrics: DroverMetrics) {
  const scrape = metricsProbe(metrics);
  return async function plugin(app: FastifyInstance): Promise<void> {
    app.get('/metrics', { config: { scope: 'public' }, schema: { hide: true } }, async (_request, reply) => sendProbe(reply.header('cache-control', 'no-store'), await scrape()));
  };
}

/**
 * The separate metrics-and-probes server: `/metrics`, `/health/live`,
 * `/health/ready`, nothing else, no authentication. Like `buildServer` it
 * never listens.
 *
 * @example
 * const metricsApp = await buildMetricsServer({ runtime, metrics, readiness });
 * await metricsApp.listen({ host: '127.0.0.1', port: 9464 });
 */
export async function buildMetricsServer(deps: { runtime: Runtime; metrics: DroverMetrics; readiness?: Readiness }): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.runtime.logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'request_id' }),
    return503OnClosing: true,
  });
  registerProblemHandlers(app);
  registerSecurityHeaders(app, { tls: false });
  registerHttpMetrics(app, deps.metrics);
  await app.register(healthRoutes(deps.runtime, deps.readiness));
  await app.register(metricsRoutes(deps.metrics));
  return app;
}
