/**
 * `drover_backup_last_success_timestamp_seconds`: when the last backup of
 * this store succeeded, whoever took it (the node's schedule or
 * `drover backup create` from cron), read from the store on scrape; 0 until
 * the first backup (the `DroverBackupTooOld` alert ignores 0).
 */
import { Gauge, type Registry } from 'prom-client';
import type { MetaStore } from '../../store/engine.js';
import { lastBackupSuccess } from './create.js';

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
