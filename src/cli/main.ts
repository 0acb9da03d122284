/**
 * The `drover` command. Each subcommand is a small module; this file only
 * declares them. Errors reach the user as one line saying what to do, with a
 * non-zero exit code.
 */
import { Command, Option } from 'commander';
import { DroverError, toError } from '../core/errors.js';
import { VERSION } from '../version.js';
import { registerAuditCommands } from './commands/audit.js';
import { registerBackupCommands } from './commands/backup.js';
import { registerDoctorCommand } from './commands/doctor.js';
import { registerJobCommands } from './commands/jobs.js';
import { registerKeyCommands } from './commands/keys.js';
import { registerMigrateCommand } from './commands/migrate.js';
import { registerOpsCommands } from './commands/ops.js';
import { registerSmokeCommand } from './commands/smoke.js';
import { registerStartCommand } from './commands/start.js';
import { loadSecretFiles } from './secret-files.js';

const program = new Command()
  .name('drover')
  .description('Durable, event-driven job runtime')
  .version(VERSION)
  .showHelpAfterError();

registerStartCommand(program);
registerMigrateCommand(program);
registerKeyCommands(program);
registerJobCommands(program);
registerBackupCommands(program);
registerAuditCommands(program);
registerOpsCommands(program);
registerDoctorCommand(program);
registerSmokeCommand(program);

export { Option };

try {
  loadSecretFiles(process.env);
  await program.parseAsync(process.argv);
} catch (error) {
  const err = toError(error);
  process.stderr.write(`drover: ${err.message}\n`);
  if (!(err instanceof DroverError) && process.env.DROVER_DEBUG) process.stderr.write(`${err.stack}\n`);
  process.exitCode = err instanceof DroverError && err.code === 'config_invalid' ? 78 : 1;
}
