/**
 * `drover_audit_export_state{state}` (1 for the current state: `ok`, or
 * `refused` when the store no longer holds what was exported and no restore
 * explains it) and `drover_audit_export_superseded_total` (exports set aside
 * after a recorded restore), read from the exporter on scrape.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { AuditExportStatus } from './export.js';

const STATES = ['ok', 'refused'] as const;

/**
 * @example
 * observeAuditExport(metrics.registry, () => ops.exporter?.status() ?? null);
 */
export function observeAuditExport(registry: Registry, status: () => AuditExportStatus | null): void {
  const superseded = new Counter({
    name: 'drover_audit_export_superseded_total',
    help: 'Audit exports set aside because a recorded restore (drover backup restore) replaced the store.',
    registers: [registry],
  });
  let counted = 0;
  new Gauge({
    name: 'drover_audit_export_state',
    help: 'State of the audit export: 1 for the current state (ok, or refused when records were removed from the store\'s trail without a recorded restore).',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const current = status();
      const state = current?.state ?? 'ok';
      for (const s of STATES) this.set({ state: s }, s === state ? 1 : 0);
      if (current && current.superseded > counted) {
        superseded.inc(current.superseded - counted);
        counted = current.superseded;
      }
    },
  });
}
