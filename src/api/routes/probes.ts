/**
 * The probes and `/metrics` as plain functions, free of any HTTP framework:
 * the API's Fastify routes (health.ts, metrics.ts) and the worker-only node's
 * `node:http` server (api/probe-server.ts) answer with the same ones, so a
 * worker-only node serves them without loading Fastify (issue 24, worker RSS).
 */
import { Readiness } from '../../obs/health.js';
import type { DroverMetrics } from '../../obs/metrics.js';
import type { Runtime } from '../../runtime/runtime.js';

/** What the health routes need from the node (the probes): the runtime satisfies it. */
export type HealthRouteDeps = Pick<Runtime, 'state' | 'store'>;

/** A probe's answer: a JSON value, or text with its own content type. */
export type ProbeAnswer = { status: number; json: unknown } | { status: number; text: string; contentType: string };

export type ProbeHandler = () => Promise<ProbeAnswer>;

/** `GET /health/live`: the event loop answers; nothing else is checked, on purpose. */
export function liveProbe(): ProbeHandler {
  return async () => ({ status: 200, json: { status: 'ok' } });
}

/** `GET /health/ready`: the node runs, its store answers and its schema is current; a 503 names the failed check. */
export function readyProbe(runtime: HealthRouteDeps, readiness: Readiness = new Readiness({ state: () => runtime.state, store: runtime.store })): ProbeHandler {
  return async () => {
    const { ok, checks } = await readiness.check();
    return { status: ok ? 200 : 503, json: { status: ok ? 'ready' : 'not_ready', checks } };
  };
}

/** `GET /metrics`: the Prometheus exposition of the node's registry. */
export function metricsProbe(metrics: DroverMetrics): ProbeHandler {
  return async () => ({ status: 200, text: await metrics.scrape(), contentType: metrics.contentType });
}

/**
 * The probe server's routes, by path (GET, and HEAD without the body).
 *
 * @example
 * const routes = probeRoutes({ runtime, metrics, readiness });
 * const answer = await routes.get('/health/live')!();
 */
export function probeRoutes(deps: { runtime: HealthRouteDeps; metrics: DroverMetrics; readiness?: Readiness }): Map<string, ProbeHandler> {
  return new Map([
    ['/health/live', liveProbe()],
    ['/health/ready', readyProbe(deps.runtime, deps.readiness)],
    ['/metrics', metricsProbe(deps.metrics)],
  ]);
}
