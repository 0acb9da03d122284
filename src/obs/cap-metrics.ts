/**
 * Lease-cap refusals (`lease:capped`, core/lease-caps.ts) as a counter, by cap
 * and queue. Tenants never become a label: their number is unbounded; the
 * log line (runtime/lifecycle-log.ts) names them, at most once a minute each.
 */
import type { LifecycleSubscriber } from '../core/lifecycle-events.js';
import type { DroverMetrics } from './metrics.js';

/**
 * @example
 * const stop = observeLeaseCaps(runtime.lifecycle, metrics);
 */
export function observeLeaseCaps(lifecycle: LifecycleSubscriber, metrics: DroverMetrics): () => void {
  return lifecycle.on('lease:capped', ({ cap, queue }) => metrics.leaseCapRefusals.series(cap, queue ?? '').inc());
}
