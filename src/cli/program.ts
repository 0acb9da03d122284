/**
 * The `drover` command tree, declared without running it: main.ts parses
 * argv with it, and the docs test checks every `drover …` the docs mention
 * against it.
 */
import type { Command } from 'commander';
import { registerAuditCommands } from './commands/audit.js';
import { registerBackupCommands } from './commands/backup.js';
import { registerDoctorCommand } from './commands/doctor.js';
import { registerInterruptCommands } from './commands/interrupts.js';
import { registerGateCommands } from './commands/gates.js';
import { registerJobCommands } from './commands/jobs.js';
import { registerKeyCommands } from './commands/keys.js';
import { registerMigrateCommand } from './commands/migrate.js';
import { registerOpsCommands } from './commands/ops.js';
import { registerSmokeCommand } from './commands/smoke.js';
import { registerStartCommand } from './commands/start.js';
import { registerTriggerCommands } from './commands/triggers.js';
import { rootCommand } from './root-command.js';

/**
 * @example
 * await buildProgram().parseAsync(process.argv);
 */
export function buildProgram(): Command {
  const program = rootCommand();
  registerStartCommand(program);
  registerMigrateCommand(program);
  registerKeyCommands(program);
  registerJobCommands(program);
  registerInterruptCommands(program);
  registerTriggerCommands(program);
  registerBackupCommands(program);
  registerAuditCommands(program);
  registerOpsCommands(program);
  registerDoctorCommand(program);
  registerGateCommands(program);
  registerSmokeCommand(program);
  return program;
}
