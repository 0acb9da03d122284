/**
 * Pick the storage engine from the database URL: `postgres://` (or
 * `postgresql://`) selects PostgreSQL, a path (or `file:`/`sqlite:` and a
 * path) a SQLite file; any other scheme is refused (core/store-url.ts).
 */
import { DroverError } from '../core/errors.js';
import { parseStoreUrl, type StoreLocation } from '../core/store-url.js';
import type { StorageEngine } from './engine.js';
import type { StoreTimeouts } from './postgres/connection.js';

/**
 * The SQLite page cache of a `drover start --low-memory` node (KiB).
 * better-sqlite3 is built with a 16,000 KiB cache, which a long drain fills:
 * a worker's malloc heap grew by ~16 MiB over 60,000 no-op jobs, for no rate
 * or CPU per job that 1 MiB lost (docs/benchmarks.md, sixth pass, "Worker
 * memory, again").
 */
export const LOW_MEMORY_SQLITE_CACHE_KIB = 1024;

export interface OpenStoreOptions {
  clock?: () => number;
  synchronous?: 'FULL' | 'NORMAL';
  /** `drover start --low-memory`: a SQLite store keeps a page cache of LOW_MEMORY_SQLITE_CACHE_KIB. */
  lowMemory?: boolean;
  /** Take the single-owner lock (runtime) or not (admin commands beside a running node). SQLite only. */
  lock?: boolean;
  /** PostgreSQL: schema, pool size and deadlines. The schema defaults to `DROVER_PG_SCHEMA`, else `drover`. */
  postgres?: { schema?: string; poolMax?: number; statementTimeoutMs?: number; queryTimeoutMs?: number; connectTimeoutMs?: number; keepAliveIdleMs?: number };
  /** PostgreSQL: a connection emitted 'error' and was discarded (`kind`: idle, active, listen). */
  onConnectionError?: (kind: string, error: Error) => void;
}

export function engineFor(url: string): 'postgres' | 'sqlite' {
  return /^postgres(ql)?:\/\//i.test(url) ? 'postgres' : 'sqlite';
}

/** `drover.db`, `sqlite:drover.db`, `sqlite://drover.db` and `file:drover.db` name the same file; null for a postgres:// URL. */
export function sqlitePathOf(databaseUrl: string): string | null {
  const location = storeLocation(databaseUrl);
  return location.engine === 'sqlite' ? location.path : null;
}

/**
 * The SQLite store's file on disk; null for a postgres:// URL and for an
 * in-memory SQLite store (nothing on disk to look for or to protect).
 *
 * @example
 * sqliteFileOf('sqlite:data/drover.db'); // 'data/drover.db'
 * sqliteFileOf(':memory:'); // null
 */
export function sqliteFileOf(databaseUrl: string): string | null {
  const path = sqlitePathOf(databaseUrl);
  // As sqlite/connection.ts's isInMemory, which this must not import: that would load better-sqlite3 on every node.
  return path === null || path === ':memory:' || path === '' ? null : path;
}

/** The parsed URL; a URL with a scheme Drover does not know (`postgress://`) is refused before anything is created. */
function storeLocation(url: string): StoreLocation {
  const location = parseStoreUrl(url);
  if ('problem' in location) throw new DroverError('config_invalid', `DROVER_DATABASE_URL: ${location.problem}`);
  return location;
}

/**
 * Open (but do not migrate) the store at `url`.
 *
 * @example
 * const store = await openStore('postgres://postgres@127.0.0.1:5432/app', { postgres: { schema: 'drover' } });
 * await store.migrate();
 */
export async function openStore(url: string, options: OpenStoreOptions = {}): Promise<StorageEngine> {
  const location = storeLocation(url);
  if (location.engine === 'postgres') {
    // Admin commands (`drover migrate`, `drover keys`) have no resolved config: they read the variable here.
    const schema = options.postgres?.schema ?? (process.env.DROVER_PG_SCHEMA || 'drover');
    // Each engine's module (and its driver, pg or better-sqlite3) is imported only by a node that uses it.
    (await import('./postgres/load-pg.js')).loadPg();
    const { openPostgresEngine } = await import('./postgres/postgres-engine.js');
    return openPostgresEngine({
      url,
      schema,
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.postgres?.poolMax ? { poolMax: options.postgres.poolMax } : {}),
      timeouts: timeoutsOf(options.postgres ?? {}),
      ...(options.onConnectionError ? { onConnectionError: options.onConnectionError } : {}),
    });
  }
  const { openSqliteEngine } = await import('./sqlite/sqlite-engine.js');
  return openSqliteEngine({
    path: location.path,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.synchronous ? { synchronous: options.synchronous } : {}),
    ...(options.lowMemory ? { cacheKib: LOW_MEMORY_SQLITE_CACHE_KIB } : {}),
    lock: options.lock ?? true,
  });
}

/** The engine's deadlines from the config keys that are set (the rest keep the engine's defaults). */
function timeoutsOf(pg: NonNullable<OpenStoreOptions['postgres']>): Partial<StoreTimeouts> {
  const timeouts: Partial<StoreTimeouts> = {};
  if (pg.statementTimeoutMs !== undefined) timeouts.statementMs = pg.statementTimeoutMs;
  if (pg.queryTimeoutMs !== undefined) timeouts.queryMs = pg.queryTimeoutMs;
  if (pg.connectTimeoutMs !== undefined) timeouts.connectMs = pg.connectTimeoutMs;
  if (pg.keepAliveIdleMs !== undefined) timeouts.keepAliveIdleMs = pg.keepAliveIdleMs;
  return timeouts;
}
