/** The wire shape of a handler's policy and state (`GET /v1/handlers`, pause/resume/reset answers). */
import type { ResolvedHandler } from '../../core/config.js';
import type { Runtime } from '../../runtime/runtime.js';

/** Jobs running in this node's dispatcher, per handler (remote workers' jobs are counted in `GET /v1/queues`). */
export function runningByHandler(runtime: Pick<Runtime, 'dispatcher'>): Map<string, number> {
  const running = new Map<string, number>();
  for (const { job } of runtime.dispatcher.running.values()) running.set(job.handler, (running.get(job.handler) ?? 0) + 1);
  return running;
}

export function handlerJson(runtime: Pick<Runtime, 'pauses' | 'supervision'>, h: ResolvedHandler, running: ReadonlyMap<string, number>) {
  return {
    name: h.name,
    queue: h.queue,
    remote: h.remote,
    paused: runtime.pauses.isHandlerPaused(h.name),
    triggers: h.triggers.map((t) => t.pattern),
    cron: h.cron,
    concurrency: h.concurrency,
    concurrencyKey: h.concurrencyKey,
    concurrencyLimit: h.concurrencyLimit,
    priority: h.priority,
    maxAttempts: h.maxAttempts,
    backoff: h.backoff,
    timeoutMs: h.timeoutMs,
    running: running.get(h.name) ?? 0,
    isolation: h.isolation,
    memoryMb: h.memoryMb,
    rateLimit: h.rateLimit,
    ...runtime.supervision.view(h.name),
  };
}
