/**
 * `drover_backup_last_success_timestamp_seconds`: when the last backup of
 * this store succeeded, whoever took it (the node's schedule or
 * `drover backup create` from cron), read from the store on scrape; 0 until
 * the first backup (the `DroverBackupTooOld` alert ignores 0).
 */
import { Gauge, type Registry } from 'prom-client';
import type { MetaStore } from '../../store/engine.js';
import { lastBackupSuccess } from './create.js';
import { REMOTE_SUCCESS_META, VERIFY_FAILURE_META, VERIFY_SUCCESS_META } from './schedule.js';

/**
 * @example
 * observeBackups(metrics.registry, store);
 */
export function observeBackups(registry: Registry, store: Pick<MetaStore, 'getMeta'>): Gauge {
  return new Gauge({
    name: 'drover_backup_last_success_timestamp_seconds',
    help: 'Unix time of the last successful backup of this store (node schedule or drover backup create); 0 if none yet.',
    registers: [registry],
    async collect() {
      // A store hiccup must not fail the scrape: keep the last value.
      const at = await lastBackupSuccess(store).catch(() => undefined);
      if (at !== undefined) this.set(at === null ? 0 : at / 1000);
    },
  });
}

/** Gauges of the scheduled verify and upload, from store metadata (0: never). */
export function observeBackupChecks(registry: Registry, store: Pick<MetaStore, 'getMeta'>): void {
  const gauges: Array<[string, string, string]> = [
    ['drover_backup_verify_last_success_timestamp_seconds', 'Unix time a scheduled backup last passed verification; 0 if never.', VERIFY_SUCCESS_META],
    ['drover_backup_verify_last_failure_timestamp_seconds', 'Unix time a scheduled backup last failed verification; 0 if never.', VERIFY_FAILURE_META],
    ['drover_backup_remote_last_success_timestamp_seconds', 'Unix time a backup was last uploaded to object storage and checked there; 0 if never.', REMOTE_SUCCESS_META],
  ];
  for (const [name, help, key] of gauges) {
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        const value = await store.getMeta(key).catch(() => undefined);
        if (value === undefined) return;
        const ms = value === null ? Number.NaN : Number(value);
        this.set(Number.isFinite(ms) ? ms / 1000 : 0);
      },
    });
  }
}
