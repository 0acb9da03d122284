/**
 * Forward-only schema migrations for the PostgreSQL engine: the numbered
 * `.sql` files in `./migrations/` beside this module (the build copies them
 * into `dist`). Each pending one runs in its own transaction that first takes
 * `pg_advisory_xact_lock` on the schema and then writes its version row, so
 * nodes starting together apply each migration once: the second waits for the
 * lock and then sees the version applied. The version row's primary key makes
 * a migrator that ignores the lock fail instead of running the DDL twice.
 */
import type pg from 'pg';
import { DroverError, SchemaTooNewError, toError } from '../../core/errors.js';
import type { MigrationStatus } from '../engine.js';
import { loadMigrationFiles, type Migration } from '../migrations.js';
import { inTransaction, longQuery } from './connection.js';

export type { Migration };

/**
 * The migrations shipped beside this module (or in `dir`), in version order.
 *
 * @example
 * const migrations = loadMigrations();
 */
export function loadMigrations(dir: URL = new URL('./migrations/', import.meta.url)): Migration[] {
  return loadMigrationFiles(dir);
}

/** Serialises migrators per schema (other schemas on the same server are not blocked). */
const LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtextextended('drover:migrate:' || $1, 0))";

/**
 * Take the migration lock in this transaction, lifting its statement deadline:
 * a migration may rewrite a large table, and a node starting beside it waits
 * for the lock as long as that takes.
 */
async function lockMigrations(client: pg.PoolClient, schema: string): Promise<void> {
  await client.query('SET LOCAL statement_timeout = 0');
  await client.query(longQuery(LOCK_SQL, [schema]));
}

async function currentVersion(client: pg.PoolClient): Promise<number> {
  const { rows } = await client.query<{ v: number | null }>('SELECT max(version)::int AS v FROM schema_migrations');
  return rows[0]?.v ?? 0;
}

/**
 * Bring `schema` to the newest version this binary knows, or (with
 * `apply: false`) only check that it is there. Throws `SchemaTooNewError` when
 * a newer Drover migrated the schema.
 *
 * @example
 * const status = await migratePostgres(pool, 'drover', { clock: Date.now });
 * // { current: 1, latest: 1, applied: [1] }
 */
export async function migratePostgres(
  pool: pg.Pool,
  schema: string,
  options: { clock: () => number; apply?: boolean; migrations?: readonly Migration[] },
): Promise<MigrationStatus> {
  const migrations = options.migrations ?? loadMigrations();
  const latest = migrations.at(-1)?.version ?? 0;
  const apply = options.apply ?? true;

  // Bootstrap under the same lock: CREATE SCHEMA IF NOT EXISTS is not safe
  // against a concurrent CREATE SCHEMA (it fails on the catalog's unique index).
  const found = await inTransaction(pool, async (client) => {
    await lockMigrations(client, schema);
    if (apply) {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`); // schema name validated: [a-z_][a-z0-9_]*
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)`);
    } else {
      const { rows } = await client.query('SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = $2', [schema, 'schema_migrations']);
      if (rows.length === 0) return 0;
    }
    return currentVersion(client);
  });
  if (found > latest) throw new SchemaTooNewError(found, latest);
  if (!apply) {
    if (found < latest) {
      throw new DroverError('store_unavailable', `schema "${schema}" is at version ${found}, this drover needs ${latest}; run \`drover migrate\``);
    }
    return { current: found, latest, applied: [] };
  }

  const applied: number[] = [];
  for (const migration of migrations) {
    if (migration.version <= found) continue;
    try {
      const ran = await inTransaction(pool, async (client) => {
        await lockMigrations(client, schema);
        // Re-read under the lock: another node may have applied it meanwhile.
        if ((await currentVersion(client)) >= migration.version) return false;
        await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
          migration.version,
          migration.name,
          options.clock(),
        ]);
        await client.query(longQuery(migration.sql));
        return true;
      });
      if (ran) applied.push(migration.version);
    } catch (error) {
      throw new DroverError('store_unavailable', `migration ${migration.version} (${migration.name}) failed: ${toError(error).message}`, {
        cause: error,
      });
    }
  }
  const current = await inTransaction(pool, currentVersion);
  if (current > latest) throw new SchemaTooNewError(current, latest);
  return { current, latest, applied };
}
