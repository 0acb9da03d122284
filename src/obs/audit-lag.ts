/**
 * `drover_audit_export_lag_records`: audit records in the store that the
 * export has not written out yet (the store's newest sequence number minus
 * the export's). It rises and falls between exports; one that keeps rising
 * means the export is stuck (a full or read-only export directory). 0 while
 * the export is off. `drover_audit_exported_records` is the newest record the
 * export holds: a lag that never clears while it does not move is a stuck export.
 */
import { Gauge } from 'prom-client';
import { toError } from '../core/errors.js';
import type { DroverMetrics } from './metrics.js';

export interface AuditLagSources {
  /** The export's newest record, or null when the export is off. */
  exportedSeq(): number | null;
  /** The store's newest audit record (0 when none). */
  headSeq(): Promise<number>;
  onError(error: Error): void;
}

/**
 * @example
 * observeAuditLag(metrics, { exportedSeq: () => ops.exporter?.status().exportedSeq ?? null, headSeq: async () => (await store.listAudit({ limit: 1 }))[0]?.seq ?? 0, onError });
 */
export function observeAuditLag(metrics: DroverMetrics, sources: AuditLagSources): void {
  new Gauge({
    name: 'drover_audit_exported_records',
    help: 'Sequence number of the newest audit record written to the export (0 before the first, or while the export is off).',
    registers: [metrics.registry],
    collect() {
      this.set(sources.exportedSeq() ?? 0);
    },
  });
  new Gauge({
    name: 'drover_audit_export_lag_records',
    help: 'Audit records in the store not yet written to the export (0 while the export is off).',
    registers: [metrics.registry],
    async collect() {
      const exported = sources.exportedSeq();
      if (exported === null) return void this.set(0);
      try {
        this.set(Math.max(0, (await sources.headSeq()) - exported));
      } catch (error) {
        sources.onError(toError(error)); // keep the last value
      }
    },
  });
}
