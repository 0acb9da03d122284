/**
 * Backup retention, grandfather-father-son: keep the newest backup of each of
 * the last N days, of each of the last N ISO weeks and of each of the last N
 * months that have backups (UTC), and always the newest backup of all. A
 * backup kept for any reason is kept. Only complete Drover backups (a
 * `drover-backup-*` directory with a manifest) are ever considered; anything
 * else in the directory is left alone.
 */
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { MANIFEST_FILE, timeFromName } from './manifest.js';

export interface RetentionPolicy {
  keepDaily: number;
  keepWeekly: number;
  keepMonthly: number;
}

export const DEFAULT_RETENTION: RetentionPolicy = { keepDaily: 7, keepWeekly: 4, keepMonthly: 12 };

export interface BackupEntry {
  name: string;
  path: string;
  /** Taken at (ms), from the directory name. */
  at: number;
}

export interface RetentionPlan {
  keep: Array<BackupEntry & { reasons: string[] }>;
  remove: BackupEntry[];
  /** Entries in the directory that are not complete Drover backups (left alone). */
  ignored: string[];
}

/** Complete backups in `dir`, newest first. */
export function listBackups(dir: string): { backups: BackupEntry[]; ignored: string[] } {
  if (!existsSync(dir)) return { backups: [], ignored: [] };
  const backups: BackupEntry[] = [];
  const ignored: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const base = name.replace(/-\d+$/, ''); // a second backup in the same millisecond gets "-2"
    const at = timeFromName(base);
    if (at === null || !statSync(path).isDirectory() || !existsSync(join(path, MANIFEST_FILE))) {
      ignored.push(name);
      continue;
    }
    backups.push({ name, path, at });
  }
  backups.sort((a, b) => b.at - a.at || (a.name < b.name ? 1 : -1));
  return { backups, ignored };
}

/** `2026-W47`: the ISO 8601 week (weeks start on Monday; week 1 holds the year's first Thursday). */
export function isoWeek(ms: number): string {
  const date = new Date(ms);
  const weekday = date.getUTCDay() || 7; // Monday = 1 … Sunday = 7
  // The Thursday of this week decides the week's year.
  const thursday = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate() + 4 - weekday));
  const year = thursday.getUTCFullYear();
  const week = Math.ceil(((thursday.getTime() - Date.UTC(year, 0, 1)) / 86_400_000 + 1) / 7);
  return `${year}-W${String(week).padStart(2, '0')}`;
}

/**
 * Decide which backups to keep. Pure: no filesystem access.
 *
 * @example
 * planRetention(listBackups(dir).backups, { keepDaily: 7, keepWeekly: 4, keepMonthly: 12 }).remove;
 */
export function planRetention(backups: readonly BackupEntry[], policy: RetentionPolicy): Omit<RetentionPlan, 'ignored'> {
  const newestFirst = [...backups].sort((a, b) => b.at - a.at);
  const reasons = new Map<BackupEntry, string[]>();
  const give = (entry: BackupEntry, reason: string) => {
    const list = reasons.get(entry) ?? [];
    list.push(reason);
    reasons.set(entry, list);
  };
  if (newestFirst[0]) give(newestFirst[0], 'newest');
  const periods: Array<[string, number, (ms: number) => string]> = [
    ['daily', policy.keepDaily, (ms) => new Date(ms).toISOString().slice(0, 10)],
    ['weekly', policy.keepWeekly, isoWeek],
    ['monthly', policy.keepMonthly, (ms) => new Date(ms).toISOString().slice(0, 7)],
  ];
  for (const [label, count, bucket] of periods) {
    const seen = new Set<string>();
    for (const entry of newestFirst) {
      if (seen.size >= count) break;
      const key = bucket(entry.at);
      if (seen.has(key)) continue;
      seen.add(key);
      give(entry, `${label} ${key}`);
    }
  }
  return {
    keep: newestFirst.filter((e) => reasons.has(e)).map((e) => ({ ...e, reasons: reasons.get(e)! })),
    remove: newestFirst.filter((e) => !reasons.has(e)),
  };
}

/**
 * Plan retention for `dir` and, unless `dryRun`, delete what the plan removes.
 *
 * @example
 * const plan = pruneBackups('./data/backups', DEFAULT_RETENTION, { dryRun: true });
 */
export function pruneBackups(dir: string, policy: RetentionPolicy, options: { dryRun: boolean }): RetentionPlan {
  const { backups, ignored } = listBackups(dir);
  const plan = planRetention(backups, policy);
  if (!options.dryRun) for (const entry of plan.remove) rmSync(entry.path, { recursive: true, force: true });
  return { ...plan, ignored };
}
