/**
 * `drover doctor`'s `file-modes` check: the data at rest (the SQLite file
 * and its -wal/-shm, backups, audit exports, the signing key) holds payloads,
 * webhook secrets and key material, so only drover's user may read it.
 * Drover creates directories 0700 and files 0600; this finds anything wider
 * (made by an older drover, a copy, or an operator's umask).
 */
import { existsSync, lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pass, skip, warn, type CheckResult } from './check.js';

/** Entries looked at, at most: a data directory with years of backups stays quick. */
const MAX_ENTRIES = 20_000;
const MAX_DEPTH = 4;
const SHOWN = 5;

interface Wide {
  path: string;
  mode: number;
}

function walk(path: string, depth: number, seen: Set<string>, wide: Wide[], count: { n: number }): void {
  if (seen.has(path) || count.n >= MAX_ENTRIES || !existsSync(path)) return;
  seen.add(path);
  count.n++;
  const stat = lstatSync(path);
  if (stat.isSymbolicLink()) return;
  const mode = stat.mode & 0o777;
  if ((mode & 0o077) !== 0) wide.push({ path, mode });
  if (stat.isDirectory() && depth < MAX_DEPTH) {
    for (const name of readdirSync(path).sort()) walk(join(path, name), depth + 1, seen, wide, count);
  }
}

/**
 * @example
 * checkFileModes(['/var/lib/drover', '/var/lib/drover/drover.db']);
 * // { id: 'file-modes', status: 'warn', detail: '2 paths readable by other users: /var/lib/drover/drover.db (644), …', fix: 'chmod …' }
 */
export function checkFileModes(paths: readonly string[], platform: NodeJS.Platform = process.platform): CheckResult {
  if (platform === 'win32') return skip('file-modes', 'POSIX file modes do not apply on Windows', 'restrict the data directory with an ACL to the account drover runs as');
  const wide: Wide[] = [];
  const seen = new Set<string>();
  const count = { n: 0 };
  for (const path of paths) walk(path, 0, seen, wide, count);
  if (wide.length === 0) return pass('file-modes', `${count.n} paths checked: none readable by group or others`);
  const shown = wide.slice(0, SHOWN).map((w) => `${w.path} (${w.mode.toString(8)})`).join(', ');
  return warn(
    'file-modes',
    `${wide.length} path${wide.length === 1 ? '' : 's'} readable by group or others (store, backups and audit files hold payloads and secrets): ${shown}${wide.length > SHOWN ? ', …' : ''}`,
    `chmod -R go-rwx ${[...new Set(paths.filter((p) => existsSync(p)))].join(' ')} (drover creates directories 0700 and files 0600; a systemd unit should also set UMask=0077)`,
  );
}
