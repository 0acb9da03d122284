/**
 * Verifying the audit trail: the whole chain in the store, or export files
 * (one or more, read in the order given), naming the first bad record. With
 * the store, the export in the data directory is compared too, which is what
 * catches records cut off the end of the store's trail.
 */
import { readFileSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import type { AuditRecord } from '../../core/types.js';
import type { AuditRange } from '../../store/engine.js';
import { ChainVerifier, type ChainReport } from './chain.js';

const PAGE = 1000;

/** Anything that reads records oldest first: a store, or a backup reader. */
export interface AuditSource {
  readAudit(range: AuditRange): Promise<AuditRecord[]> | AuditRecord[];
}

/**
 * Check every record in a store (or backup), from record 1.
 *
 * @example
 * const report = await verifyStoredTrail(store, trustedKeys(dataDir));
 * if (!report.ok) console.error(report.fault);
 */
export async function verifyStoredTrail(source: AuditSource, keys: ReadonlyMap<string, KeyObject>, label = 'store'): Promise<ChainReport> {
  const verifier = new ChainVerifier(keys, { fromGenesis: true });
  let after = 0;
  let position = 0;
  for (;;) {
    const records = await source.readAudit({ after, limit: PAGE });
    if (records.length === 0) break;
    for (const record of records) {
      if (!verifier.check(record, label, ++position)) return verifier.report();
    }
    after = records[records.length - 1]!.seq;
  }
  return verifier.report();
}

/** Parse one export line into a record (throws with what is wrong). */
function parseLine(line: string): AuditRecord {
  const value = JSON.parse(line) as Record<string, unknown>;
  for (const field of ['seq', 'time', 'actor', 'action', 'prevHash', 'hash', 'signer', 'signature'] as const) {
    if (!(field in value)) throw new Error(`missing "${field}"`);
  }
  return {
    seq: value.seq as number,
    time: String(value.time),
    actor: String(value.actor),
    requestId: (value.requestId ?? null) as string | null,
    action: String(value.action),
    target: (value.target ?? null) as string | null,
    before: value.before ?? null,
    after: value.after ?? null,
    prevHash: String(value.prevHash),
    hash: String(value.hash),
    signer: String(value.signer),
    signature: String(value.signature),
  };
}

/** Every record of export files, in order, each with where it came from. */
export function* readExportFiles(files: readonly string[]): Generator<{ record: AuditRecord | null; file: string; line: number; error?: string }> {
  for (const file of files) {
    const lines = readFileSync(file, 'utf8').split('\n');
    for (let i = 0; i < lines.length; i++) {
      const text = lines[i]!;
      if (text.trim() === '') continue;
      try {
        yield { record: parseLine(text), file, line: i + 1 };
      } catch (error) {
        yield { record: null, file, line: i + 1, error: error instanceof Error ? error.message : String(error) };
      }
    }
  }
}

/**
 * Check export files as one continuous chain. The first record may be later
 * than record 1 (older files rotated away); its prevHash is then taken on trust.
 */
export function verifyExportFiles(files: readonly string[], keys: ReadonlyMap<string, KeyObject>): ChainReport {
  const verifier = new ChainVerifier(keys, { fromGenesis: false });
  for (const { record, file, line, error } of readExportFiles(files)) {
    if (!record) {
      verifier.fail({ seq: null, position: line, source: file, reason: `not a record: ${error}` });
      break;
    }
    if (!verifier.check(record, file, line)) break;
  }
  return verifier.report();
}

export interface ExportComparison {
  ok: boolean;
  /** Records present in both that were compared. */
  compared: number;
  problem: string | null;
}

/**
 * Compare the store's trail with the export: the same seq must carry the same
 * hash, and the export must not reach past the store's newest record.
 */
export async function compareWithExport(source: AuditSource, storeLastSeq: number | null, files: readonly string[]): Promise<ExportComparison> {
  const exported = new Map<number, { hash: string; where: string }>();
  let newest = 0;
  for (const { record, file, line } of readExportFiles(files)) {
    if (!record || !Number.isSafeInteger(record.seq)) continue;
    exported.set(record.seq, { hash: record.hash, where: `${file}:${line}` });
    newest = Math.max(newest, record.seq);
  }
  if (exported.size === 0) return { ok: true, compared: 0, problem: null };
  const last = storeLastSeq ?? 0;
  if (newest > last) {
    const where = exported.get(newest)!.where;
    return { ok: false, compared: 0, problem: `the export holds records up to ${newest} (${where}) but the store's trail ends at ${last}: records were removed from the end of the store's trail` };
  }
  let compared = 0;
  let after = Math.min(...exported.keys()) - 1;
  for (;;) {
    const records = await source.readAudit({ after, limit: PAGE });
    if (records.length === 0) break;
    for (const record of records) {
      const copy = exported.get(record.seq);
      if (!copy) continue;
      compared++;
      if (copy.hash !== record.hash) {
        return { ok: false, compared, problem: `record ${record.seq} in the store differs from the exported copy (${copy.where})` };
      }
    }
    after = records[records.length - 1]!.seq;
    if (after >= newest) break;
  }
  return { ok: true, compared, problem: null };
}
