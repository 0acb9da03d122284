/**
 * The node's data directory: where the audit signing key, the audit export
 * and (by default) backups live. `DROVER_DATA_DIR` when set; otherwise the
 * SQLite file's directory, or `./data` for PostgreSQL (which has no file).
 */
import { dirname, resolve } from 'node:path';
import { sqlitePathOf } from '../store/open.js';

export { sqlitePathOf };

/**
 * @example
 * dataDirFor('./data/drover.db', {}); // '/abs/path/data'
 * dataDirFor('postgres://db/drover', { DROVER_DATA_DIR: '/var/lib/drover' }); // '/var/lib/drover'
 */
export function dataDirFor(databaseUrl: string, env: Readonly<Record<string, string | undefined>> = process.env): string {
  const fromEnv = env.DROVER_DATA_DIR;
  if (fromEnv) return resolve(fromEnv);
  const file = sqlitePathOf(databaseUrl);
  return file === null || file === ':memory:' || file === '' ? resolve('data') : dirname(resolve(file));
}

/** A configured directory: absolute as given, relative to the data directory otherwise. */
export function inDataDir(dataDir: string, path: string): string {
  return resolve(dataDir, path);
}
