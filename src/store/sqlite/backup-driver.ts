/** The SQLite `BackupDriver`: a backup is one database file (see `backup.ts`). */
import { basename } from 'node:path';
import { DroverError, toError } from '../../core/errors.js';
import type { BackupDriver } from '../backup-driver.js';
import { sqlitePathOf } from '../open.js';
import { placeSqliteBackup, SqliteBackupReader } from './backup.js';
import { loadMigrations } from './migrator.js';
import { openSqliteEngine } from './sqlite-engine.js';

export const sqliteBackupDriver: BackupDriver = {
  engine: 'sqlite',

  latestSchemaVersion: () => loadMigrations().length,

  async inspect(file, _options, check, use) {
    let reader: SqliteBackupReader;
    try {
      reader = new SqliteBackupReader(file);
    } catch (error) {
      check('integrity', false, toError(error).message);
      return;
    }
    try {
      const problems = reader.problems();
      check('integrity', problems.length === 0, problems.length === 0 ? 'PRAGMA integrity_check: ok; no foreign key violations' : problems.slice(0, 5).join('; '));
      if (problems.length === 0) await use({ schemaVersion: reader.schemaVersion(), counts: reader.counts(), audit: reader, label: basename(file) });
    } finally {
      reader.close();
    }
  },

  async place(options) {
    const target = sqlitePathOf(options.databaseUrl);
    if (target === null) throw new DroverError('validation', `${options.databaseUrl} does not name a SQLite store`);
    try {
      const placed = await placeSqliteBackup({ from: options.file, target, stamp: options.stamp, checkCopy: options.checkCopy });
      return {
        target,
        aside: placed.aside,
        // The placement holds the store's lock until release(): open beside it.
        open: async ({ clock }) => openSqliteEngine({ path: target, clock, lock: false }),
        release: () => placed.lock.release(),
      };
    } catch (error) {
      if (error instanceof DroverError && typeof error.extensions.pid === 'number') {
        const pid = error.extensions.pid;
        throw new DroverError(
          'store_unavailable',
          `cannot restore: ${target} is in use by drover pid ${pid}. Stop that node first ` +
            `(\`systemctl stop drover\`, or \`kill -TERM ${pid}\`: it drains running jobs and exits), then run the restore again.`,
          { cause: error, extensions: error.extensions },
        );
      }
      throw error;
    }
  },
};
