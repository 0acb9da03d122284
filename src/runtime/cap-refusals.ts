/**
 * Lease caps from the runtime's side: the caps a lease call carries to the
 * store, and the `lease:capped` events for what the store held back (metrics
 * and the log subscribe to them). Shared by the node's own dispatcher and the
 * remote-worker lease, so both are capped and reported alike.
 */
import { capReportIsEmpty, emptyCapReport, type LeaseCapReport, type LeaseCaps } from '../core/lease-caps.js';
import type { Lifecycle } from './lifecycle.js';

const CONTENDED_RETRY_MS = 10;

/**
 * How long to wait before leasing again when another node held some tenants'
 * locks (`LeaseCapReport.contended`): its transaction commits within a few ms,
 * and nothing else wakes this node when it does. Jittered, so two nodes that
 * collided do not collide again in step.
 */
export function contendedPauseMs(): number {
  return CONTENDED_RETRY_MS + Math.floor(Math.random() * CONTENDED_RETRY_MS);
}

/** The `caps` and `capped` fields of a lease request; nothing at all when no cap applies (the store keeps its fast path). */
export function capFields(caps: LeaseCaps): { caps?: LeaseCaps; capped?: LeaseCapReport } {
  if (caps.tenants === undefined && caps.worker === undefined && caps.key === undefined) return {};
  return { caps, capped: emptyCapReport() };
}

/** Emit one `lease:capped` per cap (and per queue for tenant caps) that held jobs back in the call. */
export function emitCapRefusals(lifecycle: Lifecycle, report: LeaseCapReport | undefined, workerId: string): void {
  if (!report || capReportIsEmpty(report)) return;
  for (const [queue, tenants] of report.tenantByQueue) lifecycle.emit('lease:capped', { cap: 'tenant', queue, tenants: [...tenants], workerId });
  if (report.worker) lifecycle.emit('lease:capped', { cap: 'worker', queue: null, tenants: [], workerId });
  if (report.key) lifecycle.emit('lease:capped', { cap: 'key', queue: null, tenants: [], workerId });
}
