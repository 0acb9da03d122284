/** The PostgreSQL `BackupDriver`: a backup is a `pg_dump` archive of one schema (see `backup-restore.ts`). */
import { DroverError, toError } from '../../core/errors.js';
import type { BackupDriver } from '../backup-driver.js';
import { engineFor } from '../open.js';
import { archiveSchemas, droverConnections, inScratchDatabase, moveSchemaAside, moveSchemaBack, restoreArchive, schemaContents } from './backup-restore.js';
import { loadMigrations } from './migrator.js';
import { openPostgresEngine } from './postgres-engine.js';

export const postgresBackupDriver: BackupDriver = {
  engine: 'postgres',

  latestSchemaVersion: () => loadMigrations().length,

  async inspect(file, options, check, use) {
    const schema = options.schema ?? 'drover';
    try {
      const schemas = await archiveSchemas(file);
      check('archive', schemas.includes(schema), schemas.includes(schema) ? `pg_restore reads it; schema ${schema}` : `the archive holds schema(s) ${schemas.join(', ') || 'none'}, not ${schema}`);
    } catch (error) {
      check('archive', false, toError(error).message);
      return;
    }
    const databaseUrl = options.databaseUrl;
    if (!databaseUrl || engineFor(databaseUrl) !== 'postgres') {
      check('integrity', false, 'not checked: restoring into a scratch database needs a PostgreSQL server; set DROVER_DATABASE_URL to one');
      return;
    }
    try {
      await inScratchDatabase(databaseUrl, file, async (scratchUrl) => {
        check('integrity', true, 'pg_restore into a scratch database succeeded (constraints and indexes rebuilt)');
        const { schemaVersion, counts } = await schemaContents(scratchUrl, schema);
        const store = openPostgresEngine({ url: scratchUrl, schema, poolMax: 2 });
        try {
          await use({ schemaVersion, counts, audit: store, label: 'archive' });
        } finally {
          await store.close();
        }
      });
    } catch (error) {
      check('integrity', false, `restoring into a scratch database failed: ${toError(error).message}`);
    }
  },

  /**
   * Refuse while any drover process is connected to the schema, rename the
   * live schema aside (`<schema>_before_restore_<time>`, kept in the
   * database), pg_restore the archive; a failed pg_restore puts the old
   * schema back.
   */
  async place(options) {
    const url = options.databaseUrl;
    const schema = options.schema ?? (process.env.DROVER_PG_SCHEMA || 'drover');
    const archived = options.archivedSchema ?? 'drover';
    if (archived !== schema) {
      throw new DroverError('validation', `the backup holds schema ${archived} but the target is schema ${schema}; set DROVER_PG_SCHEMA=${archived} to restore it (pg_restore cannot rename a schema)`);
    }
    const connected = await droverConnections(url, schema);
    if (connected.length > 0) {
      throw new DroverError(
        'store_unavailable',
        `cannot restore: ${connected.length} drover connection(s) use schema ${schema} (backend pids ${connected.map((c) => c.pid).join(', ')}). ` +
          'Stop every node on this store (`systemctl stop drover` on each host; they drain and exit) and any drover command using it, then run the restore again.',
        { extensions: { connections: connected } },
      );
    }
    const aside = `${schema.slice(0, 30)}_before_restore_${options.stamp.replace(/\D/g, '').slice(0, 14)}`;
    const moved = await moveSchemaAside(url, schema, aside);
    try {
      await restoreArchive(options.file, url);
    } catch (error) {
      if (moved) await moveSchemaBack(url, aside, schema);
      throw new DroverError('store_unavailable', `pg_restore into schema ${schema} failed, the previous schema is back in place: ${toError(error).message}`, { cause: error });
    }
    return {
      target: `schema ${schema}`,
      aside: moved ? [`schema ${aside}`] : [],
      open: async ({ clock }) => openPostgresEngine({ url, schema, clock }),
      release: () => undefined,
    };
  },
};
