/**
 * Forward-only schema migrations for the SQLite engine. Migrations are the
 * numbered `.sql` files in `./migrations/` beside this module (the build copies
 * them into `dist`), e.g. `0001_init.sql`. Each pending one runs in its own
 * `BEGIN IMMEDIATE` transaction that writes its version row first, so a second
 * migrator racing on the same file blocks on the write lock and then sees the
 * version as applied instead of running the DDL twice.
 */
import type Database from 'better-sqlite3';
import { DroverError, SchemaTooNewError } from '../../core/errors.js';
import type { MigrationStatus } from '../engine.js';
import { loadMigrationFiles, type Migration } from '../migrations.js';

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

/** Highest applied version, or 0 for a fresh database. */
export function currentVersion(db: Database.Database): number {
  const row = db.prepare('SELECT max(version) AS v FROM schema_migrations').get() as { v: number | null };
  return row.v ?? 0;
}

/**
 * Apply every pending migration; throws `SchemaTooNewError` when the database
 * was migrated by a newer Drover.
 *
 * @example
 * const status = migrateSqlite(db, { clock: Date.now });
 * // { current: 1, latest: 1, applied: [1] }
 */
export function migrateSqlite(
  db: Database.Database,
  options: { clock?: () => number; migrations?: readonly Migration[]; apply?: boolean } = {},
): MigrationStatus {
  const clock = options.clock ?? Date.now;
  const migrations = options.migrations ?? loadMigrations();
  const latest = migrations.at(-1)?.version ?? 0;

  if (options.apply === false) {
    // Check only (`drover start --no-migrate`): write nothing, not even the version table.
    const hasTable = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get() !== undefined;
    const found = hasTable ? currentVersion(db) : 0;
    if (found > latest) throw new SchemaTooNewError(found, latest);
    if (found < latest) throw new DroverError('store_unavailable', `the store is at schema version ${found}, this drover needs ${latest}; run \`drover migrate\``);
    return { current: found, latest, applied: [] };
  }

  // Bootstrap: the version table must exist before the first version row can
  // be written. 0001 declares it too (IF NOT EXISTS) so the schema reads whole.
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`);

  const found = currentVersion(db);
  if (found > latest) throw new SchemaTooNewError(found, latest);

  const applied: number[] = [];
  for (const migration of migrations) {
    if (migration.version <= found) continue;
    const apply = db.transaction(() => {
      // Re-read under the write lock: another process may have applied it meanwhile.
      if (currentVersion(db) >= migration.version) return false;
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(
        migration.version,
        migration.name,
        clock(),
      );
      db.exec(migration.sql);
      return true;
    });
    try {
      if (apply.immediate()) applied.push(migration.version);
    } catch (error) {
      throw new DroverError(
        'store_unavailable',
        `migration ${migration.version} (${migration.name}) failed: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
  }
  return { current: currentVersion(db), latest, applied };
}
