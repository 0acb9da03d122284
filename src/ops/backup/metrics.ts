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

/**
 * The in-process schedule's verify, under the names the verify timer writes for node_exporter
 * (`drover_backup_verify_success`, `drover_backup_verify_timestamp_seconds`; labelled `source="schedule"`),
 * so the same alerts cover both; absent until a scheduled verify ran. And when a backup was last
 * uploaded to object storage and checked there (0: never).
 */
export function observeBackupChecks(registry: Registry, store: Pick<MetaStore, 'getMeta'>): void {
  const read = async (key: string): Promise<number | null | undefined> => {
    const value = await store.getMeta(key).catch(() => undefined);
    if (value === undefined) return undefined;
    const ms = value === null ? Number.NaN : Number(value);
    return Number.isFinite(ms) ? ms : null;
  };
  const verified = async () => ({ ok: await read(VERIFY_SUCCESS_META), failed: await read(VERIFY_FAILURE_META) });
  new Gauge({
    name: 'drover_backup_verify_success',
    help: '1 if the newest scheduled backup passed verification, 0 if it failed; absent until one was verified.',
    labelNames: ['source'],
    registers: [registry],
    async collect() {
      const { ok, failed } = await verified();
      if (ok === undefined || failed === undefined || (ok === null && failed === null)) return;
      this.set({ source: 'schedule' }, (ok ?? 0) >= (failed ?? 0) ? 1 : 0);
    },
  });
  new Gauge({
    name: 'drover_backup_verify_timestamp_seconds',
    help: 'Unix time the last scheduled verification of a backup ran (passed or not); absent until one ran.',
    labelNames: ['source'],
    registers: [registry],
    async collect() {
      const { ok, failed } = await verified();
      const last = Math.max(ok ?? 0, failed ?? 0);
      if (last > 0) this.set({ source: 'schedule' }, last / 1000);
    },
  });
  new Gauge({
    name: 'drover_backup_remote_last_success_timestamp_seconds',
    help: 'Unix time a backup was last uploaded to object storage and checked there; 0 if never.',
    registers: [registry],
    async collect() {
      const at = await read(REMOTE_SUCCESS_META);
      if (at !== undefined) this.set(at === null ? 0 : at / 1000);
    },
  });
}
