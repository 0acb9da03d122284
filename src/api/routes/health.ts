/**
 * Probes (OPERATIONS.md "Probes"): liveness says only that the event loop
 * answers; readiness checks the store within a timeout, that its schema is
 * current and that the node is not draining, naming the failed check in a 503
 * body (the checks are in `obs/health.ts`).
 */
import type { FastifyInstance } from 'fastify';
import { Readiness } from '../../obs/health.js';
import type { Runtime } from '../../runtime/runtime.js';

/** What the health routes need from the node (the probes): the runtime satisfies it. */
export type HealthRouteDeps = Pick<Runtime, 'state' | 'store'>;

export function healthRoutes(runtime: HealthRouteDeps, readiness: Readiness = new Readiness({ state: () => runtime.state, store: runtime.store })) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    app.get('/health/live', { config: { scope: 'public' } }, async () => ({ status: 'ok' }));

    app.get('/health/ready', { config: { scope: 'public' } }, async (_request, reply) => {
      const { ok, checks } = await readiness.check();
      return reply.code(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not_ready', checks });
    });
  };
}
