/**
 * `drover backup pull`: copy a running node's store off the box over HTTP
 * (a snapshot in verified chunks, see ops/backup/pull.ts), with a progress
 * bar on a terminal and a line per tenth otherwise.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { DroverError } from '../../core/errors.js';
import { trustedKeys } from '../../ops/audit/node-key.js';
import { splitTrustArgs } from '../../ops/backup/manifest-signature.js';
import { pullSnapshot, type PullProgress } from '../../ops/backup/pull.js';
import { dataDirFor } from '../../ops/data-dir.js';
import { MAX_CHUNK_BYTES, MIN_CHUNK_BYTES } from '../../ops/backup/snapshots.js';
import { databaseUrlFromEnv } from './options.js';

const collect = (value: string, previous: string[]) => [...previous, value];
function chunkSize(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < MIN_CHUNK_BYTES || n > MAX_CHUNK_BYTES) throw new InvalidArgumentError(`expected a whole number of bytes from ${MIN_CHUNK_BYTES} to ${MAX_CHUNK_BYTES}`);
  return n;
}

const mib = (bytes: number) => `${(bytes / 1_048_576).toFixed(1)} MiB`;

interface PullFlags {
  from?: string;
  key?: string;
  keyFile?: string;
  out?: string;
  snapshot?: string;
  chunkBytes?: number;
  keepSnapshot?: boolean;
  trustKey: string[];
  json?: boolean;
}

export function registerBackupPull(backup: Command): void {
  backup
    .command('pull')
    .description('fetch a snapshot of a running node over HTTP (admin key), verify every chunk and the signature, and write it as a backup; run it again to resume')
    .option('--from <url>', 'the node to pull from (default: DROVER_URL)')
    .option('--key-file <file>', 'file holding an admin API key (default: DROVER_API_KEY / DROVER_API_KEY_FILE)')
    .option('--key <key>', 'an admin API key (visible to other users of this machine in `ps`: prefer --key-file)')
    .option('--out <dir>', 'directory that receives drover-backup-<time>/ (default: <data dir>/backups)')
    .option('--snapshot <id>', 'pull this existing snapshot instead of taking one')
    .option('--chunk-bytes <n>', `chunk size for a new snapshot, ${MIN_CHUNK_BYTES} to ${MAX_CHUNK_BYTES} (default 4 MiB)`, chunkSize)
    .option('--keep-snapshot', 'leave the snapshot on the node afterwards (default: delete it)')
    .option('--trust-key <file|fingerprint>', "trust this key for the snapshot's signature: a public key file, or the fingerprint (ed25519:…) printed by `drover audit pubkey` on the node (repeatable)", collect, [] as string[])
    .option('--json', 'print the result as JSON')
    .action(async (opts: PullFlags) => {
      const from = opts.from ?? process.env.DROVER_URL;
      if (!from) throw new DroverError('validation', 'name the node to pull from: --from https://host:7070 (or set DROVER_URL)');
      const key = opts.keyFile ? readFileSync(opts.keyFile, 'utf8').trim() : (opts.key ?? process.env.DROVER_API_KEY);
      if (!key) throw new DroverError('unauthorized', 'give an admin API key: --key-file FILE or DROVER_API_KEY');
      const dataDir = dataDirFor(databaseUrlFromEnv());
      const { files, fingerprints } = splitTrustArgs(opts.trustKey);
      const bar = progressBar(opts.json === true);
      const result = await pullSnapshot({
        from,
        key,
        outDir: opts.out ?? join(dataDir, 'backups'),
        trustedKeys: trustedKeys(dataDir, files),
        trustFingerprints: fingerprints,
        ...(opts.snapshot ? { snapshotId: opts.snapshot } : {}),
        ...(opts.keepSnapshot ? { keepSnapshot: true } : {}),
        ...(opts.chunkBytes ? { chunkBytes: opts.chunkBytes } : {}),
        onProgress: bar.update,
        onRetry: (chunk, reason) => bar.note(`fetching chunk ${chunk} again: ${reason}`),
      });
      bar.done();
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ path: result.path, snapshot: result.snapshot.id, bytes: result.snapshot.size, chunks: result.snapshot.chunkCount, resumedChunks: result.resumedChunks, signature: result.signature }, null, 2)}\n`);
        return;
      }
      process.stdout.write(`backup written to ${result.path}\n`);
      process.stdout.write(`  ${mib(result.snapshot.size)} in ${result.snapshot.chunkCount} verified chunk(s)${result.resumedChunks > 0 ? `, ${result.resumedChunks} kept from an interrupted pull` : ''}; ${result.signature}\n`);
      process.stdout.write(`  check it with: drover backup verify ${result.path}\n`);
    });
}

/** A bar redrawn in place on a terminal; on a pipe, a line at each tenth. Always on stderr: stdout is the result. */
function progressBar(quiet: boolean) {
  const tty = process.stderr.isTTY === true;
  const started = Date.now();
  let lastTenth = -1;
  return {
    update(p: PullProgress): void {
      if (quiet) return;
      const share = p.bytesTotal === 0 ? 1 : p.bytesDone / p.bytesTotal;
      const rate = p.bytesDone / Math.max(0.001, (Date.now() - started) / 1000);
      const line = `${p.chunksDone}/${p.chunkCount} chunks, ${mib(p.bytesDone)} of ${mib(p.bytesTotal)} (${(share * 100).toFixed(0)}%), ${mib(rate)}/s`;
      if (tty) {
        const width = 30;
        const filled = Math.round(share * width);
        process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${line}`);
      } else if (Math.floor(share * 10) > lastTenth) {
        lastTenth = Math.floor(share * 10);
        process.stderr.write(`${line}\n`);
      }
    },
    note(message: string): void {
      process.stderr.write(`${tty ? '\n' : ''}${message}\n`);
    },
    done(): void {
      if (tty && !quiet) process.stderr.write('\n');
    },
  };
}
