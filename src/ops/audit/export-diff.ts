/**
 * What an export holds that the store no longer does: the records an
 * operator needs to see after a truncated trail was refused, and what a
 * superseded export (`<export dir>/superseded-*`) held before a restore
 * replaced the store. `drover audit verify` prints both.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditRecord } from '../../core/types.js';
import { exportFiles } from './export.js';
import { readRestoreMarker, type RestoreMarker } from './restore-marker.js';
import { readExportFiles, type AuditSource } from './verify.js';

const PAGE = 1000;

/**
 * Export records whose seq the store lacks or holds with another hash, oldest first.
 *
 * @example
 * const missing = await missingFromStore(store, exportFiles('./data/audit'));
 * missing.map((r) => r.seq); // [41, 42, 43]
 */
export async function missingFromStore(source: AuditSource, files: readonly string[]): Promise<{ records: number; missing: AuditRecord[] }> {
  const exported: AuditRecord[] = [];
  for (const { record } of readExportFiles(files)) if (record && Number.isSafeInteger(record.seq)) exported.push(record);
  if (exported.length === 0) return { records: 0, missing: [] };
  const first = Math.min(...exported.map((r) => r.seq));
  const last = Math.max(...exported.map((r) => r.seq));
  const stored = new Map<number, string>();
  let after = first - 1;
  while (after < last) {
    const page = await source.readAudit({ after, limit: PAGE });
    if (page.length === 0) break;
    for (const r of page) stored.set(r.seq, r.hash);
    after = page[page.length - 1]!.seq;
  }
  return { records: exported.length, missing: exported.filter((r) => stored.get(r.seq) !== r.hash).sort((a, b) => a.seq - b.seq) };
}

export interface SupersededExport {
  dir: string;
  /** The restore that set it aside; null when it was moved aside by hand. */
  restore: RestoreMarker | null;
  records: number;
  missing: AuditRecord[];
}

/**
 * Every `superseded-*` directory of an export, oldest first, with what it holds that the store does not.
 *
 * @example
 * for (const s of await supersededExports(store, './data/audit')) console.log(s.dir, s.missing.length);
 */
export async function supersededExports(source: AuditSource, exportDir: string): Promise<SupersededExport[]> {
  if (!existsSync(exportDir)) return [];
  const dirs = readdirSync(exportDir)
    .filter((name) => name.startsWith('superseded-') && statSync(join(exportDir, name)).isDirectory())
    .sort()
    .map((name) => join(exportDir, name));
  const out: SupersededExport[] = [];
  for (const dir of dirs) {
    const { records, missing } = await missingFromStore(source, exportFiles(dir));
    out.push({ dir, restore: readRestoreMarker(dir), records, missing });
  }
  return out;
}

/** One line per record for people: `seq time actor action target`. */
export function describeRecord(record: AuditRecord): string {
  return `${record.seq}  ${record.time}  ${record.actor}  ${record.action}${record.target ? `  ${record.target}` : ''}`;
}
