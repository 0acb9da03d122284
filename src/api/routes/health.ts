/**
 * Probes (OPERATIONS.md "Probes"): liveness says only that the event loop
 * answers; readiness checks the store within a timeout, that its schema is
 * current and that the node is not draining, naming the failed check in a 503
 * body (the checks are in `obs/health.ts`, the answers in `probes.ts`).
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Readiness } from '../../obs/health.js';
import { liveProbe, readyProbe, type HealthRouteDeps, type ProbeAnswer } from './probes.js';

export type { HealthRouteDeps };

/** Send a probe's answer through Fastify (the probe server sends the same ones through `node:http`). */
export function sendProbe(reply: FastifyReply, answer: ProbeAnswer): FastifyReply {
  reply.code(answer.status);
  return 'json' in answer ? reply.send(answer.json) : reply.header('content-type', answer.contentType).send(answer.text);
}

export function healthRoutes(runtime: HealthRouteDeps, readiness?: Readiness) {
  const live = liveProbe();
  const ready = readyProbe(runtime, readiness);
  return async function plugin(app: FastifyInstance): Promise<void> {
    app.get('/health/live', { config: { scope: 'public' } }, async (_request, reply) => sendProbe(reply, await live()));
    app.get('/health/ready', { config: { scope: 'public' } }, async (_request, reply) => sendProbe(reply, await ready()));
  };
}
