/**
 * Wire `drover_handler_breaker_state` and `drover_handler_quarantined` to the
 * supervision state: set from the stored state at start, then on every
 * transition (`handler:supervision`). Count replaced handler threads in
 * `drover_thread_restarts_total` (`thread:restarted`).
 */
import { BREAKER_STATES, type DroverMetrics } from '../obs/metrics.js';
import type { Runtime } from './runtime.js';

/**
 * @example
 * observeSupervision(runtime, metrics);
 */
export function observeSupervision(runtime: Pick<Runtime, 'lifecycle' | 'supervision' | 'config'>, metrics: DroverMetrics): () => void {
  const set = (handler: string, quarantined: boolean, breaker: string) => {
    metrics.handlerQuarantined.set({ handler }, quarantined ? 1 : 0);
    for (const state of BREAKER_STATES) metrics.handlerBreakerState.set({ handler, state }, state === breaker ? 1 : 0);
  };
  for (const name of runtime.config.handlers.keys()) set(name, runtime.supervision.isQuarantined(name), runtime.supervision.breakerState(name));
  const off = [
    runtime.lifecycle.on('handler:supervision', ({ handler, quarantined, breaker }) => set(handler, quarantined, breaker)),
    runtime.lifecycle.on('thread:restarted', ({ handler, reason }) => metrics.threadRestarts.series(handler, reason).inc()),
  ];
  return () => {
    for (const unsubscribe of off) unsubscribe();
  };
}
