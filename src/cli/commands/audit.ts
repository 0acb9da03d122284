/**
 * `drover audit verify|pubkey|list`: check the signed, hash-chained audit
 * trail (in the store or in export files) and print the node's public key.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { DroverError } from '../../core/errors.js';
import type { ChainReport } from '../../ops/audit/chain.js';
import { exportFiles, recordLine } from '../../ops/audit/export.js';
import { KEY_FILE, loadNodeKey, trustedKeys } from '../../ops/audit/node-key.js';
import { compareWithExport, verifyExportFiles, verifyStoredTrail } from '../../ops/audit/verify.js';
import { describeRecord, missingFromStore, supersededExports } from '../../ops/audit/export-diff.js';
import type { AuditRecord } from '../../core/types.js';
import { dataDirFor } from '../../ops/data-dir.js';
import { openStore } from '../../store/open.js';
import { databaseUrlFromEnv } from './options.js';

const out = (line: string): void => void process.stdout.write(`${line}\n`);
/** Records shown per list before "… and N more". */
const SHOWN = 50;

function listRecords(records: readonly AuditRecord[]): void {
  for (const record of records.slice(0, SHOWN)) out(`    ${describeRecord(record)}`);
  if (records.length > SHOWN) out(`    … and ${records.length - SHOWN} more`);
}
const collect = (value: string, previous: string[]) => [...previous, value];

function describe(report: ChainReport): string {
  if (report.records === 0) return 'no records';
  const range = `records ${report.firstSeq}–${report.lastSeq}`;
  return `${report.records} records (${range}), chain and signatures intact; signed by ${report.signers.join(', ')}${report.anchored ? `; the first record's predecessor was not checked (older files rotated away)` : ''}`;
}

function fail(report: ChainReport): never {
  const f = report.fault!;
  throw new DroverError('validation', `audit trail broken at record ${f.seq ?? '?'} (${f.source}${f.source === 'store' ? '' : `:${f.position}`}): ${f.reason}`);
}

export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('the signed, hash-chained trail of operator actions');

  audit
    .command('verify [files...]')
    .description('check the chain and every signature, in the store (--db, the default) or in export files/directories; names the first bad record')
    .option('--db', 'verify the trail in the store (DROVER_DATABASE_URL), and compare it with the export')
    .option('--pubkey <file>', 'also trust this public key (repeatable; other nodes, earlier installations)', collect, [] as string[])
    .option('--export-dir <dir>', 'export to compare with --db (default: <data dir>/audit)')
    .action(async (files: string[], opts: { db?: boolean; pubkey: string[]; exportDir?: string }) => {
      const url = databaseUrlFromEnv();
      const dataDir = dataDirFor(url);
      const keys = trustedKeys(dataDir, opts.pubkey);
      if (keys.size === 0) throw new DroverError('validation', `no trusted keys: ${dataDir} has no audit signing key; pass --pubkey FILE`);

      if (files.length > 0) {
        const list = files.flatMap((f) => (existsSync(f) && statSync(f).isDirectory() ? exportFiles(f) : [f]));
        if (list.length === 0) throw new DroverError('validation', `no audit-*.jsonl files in ${files.join(', ')}`);
        const report = verifyExportFiles(list, keys);
        if (!report.ok) fail(report);
        out(`ok: ${list.length} file(s): ${describe(report)}`);
        if (!opts.db) return;
      }

      const store = await openStore(url, { lock: false });
      try {
        const report = await verifyStoredTrail(store, keys);
        if (!report.ok) fail(report);
        out(`ok: store: ${describe(report)}`);
        const dir = opts.exportDir ?? join(dataDir, 'audit');
        // What earlier exports held that the store no longer does: set aside by a restore (or by hand).
        for (const old of await supersededExports(store, dir)) {
          const why = old.restore
            ? `set aside after the restore of ${old.restore.backup} at ${old.restore.at} (record ${old.restore.seq})`
            : 'set aside without a recorded restore (moved by hand)';
          if (old.missing.length === 0) {
            out(`superseded export ${old.dir}: ${why}; all its ${old.records} records are in the store`);
          } else {
            out(`superseded export ${old.dir}: ${why}; it holds ${old.missing.length} of its ${old.records} records that the store no longer does:`);
            listRecords(old.missing);
          }
        }
        const files = exportFiles(dir);
        const comparison = await compareWithExport(store, report.lastSeq, files);
        if (!comparison.ok) {
          const { missing } = await missingFromStore(store, files);
          if (missing.length > 0) {
            out(`the export in ${dir} holds ${missing.length} record(s) the store no longer does:`);
            listRecords(missing);
          }
          throw new DroverError('validation', `audit trail does not match its export in ${dir}: ${comparison.problem}`);
        }
        out(comparison.compared > 0 ? `ok: the export in ${dir} agrees on ${comparison.compared} records` : `(no exported records in ${dir} to compare)`);
      } finally {
        await store.close();
      }
    });

  audit
    .command('pubkey')
    .description("print the node's audit public key (PEM); verifiers elsewhere pass it with --pubkey")
    .option('--json', 'print { keyId, publicKey }')
    .action(async (opts: { json?: boolean }) => {
      const file = join(dataDirFor(databaseUrlFromEnv()), KEY_FILE);
      if (!existsSync(file)) throw new DroverError('validation', `there is no audit signing key at ${file} yet; the node creates it on its first start (set DROVER_DATA_DIR if the node uses another directory)`);
      const key = loadNodeKey(file);
      if (opts.json) out(JSON.stringify({ keyId: key.keyId, publicKey: key.publicPem }));
      else process.stdout.write(key.publicPem);
    });

  audit
    .command('list')
    .description('print the newest records as JSON lines (the same shape as the export)')
    .option('--limit <n>', 'how many', '20')
    .action(async (opts: { limit: string }) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1) throw new DroverError('validation', '--limit: expected a whole number ≥ 1');
      const store = await openStore(databaseUrlFromEnv(), { lock: false });
      try {
        for (const record of (await store.listAudit({ limit })).reverse()) out(recordLine(record));
      } finally {
        await store.close();
      }
    });
}
