/** Node status, handlers and queues: what an operator looks at first. */
import type { FastifyInstance } from 'fastify';
import type { AuditExportStatus } from '../../ops/audit/export.js';
import type { Runtime } from '../../runtime/runtime.js';
import { priorityMsLabel, type QueuePolicy } from '../../core/queue-policy.js';
import { VERSION } from '../../version.js';
import { handlerJson, runningByHandler } from './handler-state.js';

/** What the status routes need from the node (the node's status view): the runtime satisfies it. */
export type StatusRouteDeps = Pick<Runtime, 'config' | 'store' | 'clock' | 'dispatcher' | 'pauses' | 'refusals' | 'startedAt' | 'state' | 'supervision' | 'tracing' | 'workerId' | 'gates'>;

/** `auditExport`: the audit export's state; a refused export is shown here and alerted on, not failed in readiness (docs/operations.md). */
export function statusRoutes(runtime: StatusRouteDeps, auditExport?: () => AuditExportStatus | null) {
  const { config, store } = runtime;
  return async function plugin(app: FastifyInstance): Promise<void> {
    app.get('/v1/status', { config: { scope: 'read' } }, async () => ({
      version: VERSION,
      nodeId: runtime.workerId,
      state: runtime.state,
      store: store.capabilities.engine,
      startedAt: new Date(runtime.startedAt).toISOString(),
      uptimeSeconds: Math.round((runtime.clock() - runtime.startedAt) / 1000),
      handlers: [...config.handlers.keys()],
      queues: [...config.queues.keys()],
      running: runtime.dispatcher.running.size,
      quarantinedHandlers: [...config.handlers.keys()].filter((name) => runtime.supervision.isQuarantined(name)),
      openBreakers: [...config.handlers.keys()].filter((name) => runtime.supervision.breakerState(name) !== 'closed'),
      features: {
        tracing: runtime.tracing.enabled,
        metricsListener: config.metrics.port !== null,
        rateLimit: config.rateLimit.enabled,
        remoteHandlers: [...config.handlers.values()].some((h) => h.remote),
      },
      auditExport: auditExport?.() ?? null,
      rollout: { channel: config.rollout.channel, gates: Object.fromEntries(runtime.gates.list().map((g) => [g.name, g.enabled])) },
    }));

    app.get('/v1/handlers', { config: { scope: 'read' } }, async () => {
      const running = runningByHandler(runtime);
      return { handlers: [...config.handlers.values()].map((h) => handlerJson(runtime, h, running)) };
    });

    app.get('/v1/queues', { config: { scope: 'read' } }, async () => {
      const stats = new Map((await store.queueStats()).map((s) => [s.queue, s]));
      const now = runtime.clock();
      return {
        queues: [...config.queues.entries()].map(([name, policy]) => {
          const s = stats.get(name);
          const counts = s?.counts ?? { scheduled: 0, queued: 0, running: 0, succeeded: 0, dead: 0, cancelled: 0 };
          return {
            name,
            maxDepth: policy.maxDepth,
            ...leaseOrderJson(policy),
            paused: runtime.pauses.isQueuePaused(name),
            counts,
            oldestQueuedAgeSeconds: s?.oldestQueuedAt == null ? 0 : Math.max(0, (now - s.oldestQueuedAt) / 1000),
            // How long this node has refused intake into the full queue; 0 while it accepts.
            backpressureSeconds: runtime.refusals.seconds(name, { depth: counts.scheduled + counts.queued + counts.running, maxDepth: policy.maxDepth }),
          };
        }),
      };
    });
  };
}

/** How the queue orders its jobs for leasing (docs/configuration.md "Flow control"). */
function leaseOrderJson(policy: QueuePolicy) {
  return {
    weights: { priority: policy.weights.priority, age: policy.weights.age },
    ageUnitMs: policy.ageUnitMs,
    priorityMs: priorityMsLabel(policy.priorityMs),
    fairness: policy.fairness,
  };
}
