/** `drover migrate`: apply pending migrations and print the schema version. */
import type { Command } from 'commander';
import { openStore } from '../../store/open.js';
import { databaseUrlFromEnv } from './options.js';

export function registerMigrateCommand(program: Command): void {
  program
    .command('migrate')
    .description('apply pending store migrations (DROVER_DATABASE_URL)')
    .action(async () => {
      const store = await openStore(databaseUrlFromEnv(), { lock: false });
      try {
        const status = await store.migrate();
        process.stdout.write(
          status.applied.length > 0
            ? `applied migrations ${status.applied.join(', ')}; schema version ${status.current}\n`
            : `schema is current at version ${status.current}\n`,
        );
      } finally {
        await store.close();
      }
    });
}
