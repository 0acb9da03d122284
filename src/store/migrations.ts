/**
 * Loading an engine's numbered `.sql` migrations (`0001_init.sql`, ...) from
 * the `migrations/` folder beside it. Each engine runs its own files its own
 * way (`sqlite/migrator.ts`, `postgres/migrator.ts`); what a migration file is
 * and how they are numbered is the same for both.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { DroverError } from '../core/errors.js';

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
 * const migrations = loadMigrationFiles(new URL('./migrations/', import.meta.url));
 * migrations.at(-1)?.version; // the latest schema version
 */
export function loadMigrationFiles(dir: URL): Migration[] {
  const migrations: Migration[] = [];
  for (const file of readdirSync(dir)) {
    if (!file.endsWith('.sql')) continue;
    const match = FILE_PATTERN.exec(file);
    if (!match) throw new DroverError('internal', `migration file "${file}" is not named NNNN_name.sql`);
    migrations.push({ version: Number(match[1]), name: match[2] ?? file, sql: readFileSync(new URL(file, dir), 'utf8') });
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
