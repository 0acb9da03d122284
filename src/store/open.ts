/**
 * Pick the storage engine from the database URL: `postgres://` (or
 * `postgresql://`) selects PostgreSQL, anything else is a SQLite file path.
 */
import type { StorageEngine } from './engine.js';
import type { StoreTimeouts } from './postgres/connection.js';
import { openPostgresEngine } from './postgres/postgres-engine.js';
import { openSqliteEngine } from './sqlite/sqlite-engine.js';

export interface OpenStoreOptions {
  clock?: () => number;
  synchronous?: 'FULL' | 'NORMAL';
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

/** `drover.db`, `sqlite:drover.db` and `sqlite://drover.db` name the same file; null for a postgres:// URL. */
export function sqlitePathOf(databaseUrl: string): string | null {
  if (engineFor(databaseUrl) === 'postgres') return null;
  return databaseUrl.startsWith('sqlite:') ? databaseUrl.slice('sqlite:'.length).replace(/^\/\//, '') : databaseUrl;
}

/**
 * Open (but do not migrate) the store at `url`.
 *
 * @example
 * const store = await openStore('postgres://postgres@127.0.0.1:5432/app', { postgres: { schema: 'drover' } });
 * await store.migrate();
 */
export async function openStore(url: string, options: OpenStoreOptions = {}): Promise<StorageEngine> {
  if (engineFor(url) === 'postgres') {
    // Admin commands (`drover migrate`, `drover keys`) have no resolved config: they read the variable here.
    const schema = options.postgres?.schema ?? (process.env.DROVER_PG_SCHEMA || 'drover');
    return openPostgresEngine({
      url,
      schema,
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.postgres?.poolMax ? { poolMax: options.postgres.poolMax } : {}),
      timeouts: timeoutsOf(options.postgres ?? {}),
      ...(options.onConnectionError ? { onConnectionError: options.onConnectionError } : {}),
    });
  }
  const path = sqlitePathOf(url) ?? url;
  return openSqliteEngine({
    path,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.synchronous ? { synchronous: options.synchronous } : {}),
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
