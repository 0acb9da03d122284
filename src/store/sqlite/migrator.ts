/**
 * Forward-only schema migrations for the SQLite engine. Migrations are the
 * numbered `.sql` files in `./migrations/` beside this module (the build copies
 * them into `dist`), e.g. `0001_init.sql`. Each pending one runs in its own
 * `BEGIN IMMEDIATE` transaction that writes its version row first, so a second
 * migrator racing on the same file blocks on the write lock and then sees the
 * version as applied instead of running the DDL twice.
 */
import { readdirSync, readFileSync } from 'node:fs';
import type Database from 'better-sqlite3';
import { DroverError, SchemaTooNewError } from '../../core/errors.js';
import type { MigrationStatus } from '../engine.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

const FILE_PATTERN = /^(\d+)_([A-Za-z0-9_-]+)\.sql$/;

/**
 * Read the numbered migrations from a directory, in version order.
 *
 * @example
 * const migrations = loadMigrations(); // the ones shipped beside this module
 */
export function loadMigrations(dir: URL = new URL('./migrations/', import.meta.url)): Migration[] {
  const migrations: Migration[] = [];
  for (const file of readdirSync(dir)) {
    if (!file.endsWith('.sql')) continue;
    const match = FILE_PATTERN.exec(file);
    if (!match) {
      throw new DroverError('internal', `migration file "${file}" is not named NNNN_name.sql`);
    }
    migrations.push({
      version: Number(match[1]),
      name: match[2] ?? file,
      sql: readFileSync(new URL(file, dir), 'utf8'),
    });
  }
  migrations.sort((a, b) => a.version - b.version);
  // A gap or a duplicate means a botched merge; applying around it would leave
  // stores that disagree about what version N contains.
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new DroverError('internal', `migrations must be numbered 1..N without gaps; found ${m.version} at position ${i + 1}`);
    }
  });
  return migrations;
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
