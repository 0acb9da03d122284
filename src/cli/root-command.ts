/**
 * The root of the `drover` command tree, and the tree `drover start` runs
 * with: only the `start` command (issue 24, worker RSS). The other commands'
 * modules (backup, audit, doctor, job and key commands, and the ops code they
 * share) are ~0.5 MiB of a node's live heap that a long-running node never
 * runs; a start-only tree leaves them unloaded. program.ts builds the full tree.
 */
import type { Command } from 'commander';
import { commander } from './commander.js';
import { VERSION } from '../version.js';
import { registerStartCommand } from './commands/start.js';

/** `drover` with its name, description and `--version`, and no commands yet. */
export function rootCommand(): Command {
  return new (commander().Command)().name('drover').description('Durable, event-driven job runtime').version(VERSION).showHelpAfterError();
}

/**
 * The tree for `drover start …`: parses and runs exactly as the full tree does for that command.
 * @example
 * await buildStartProgram().parseAsync(['node', 'drover', 'start', '--worker-only']);
 */
export function buildStartProgram(): Command {
  const program = rootCommand();
  registerStartCommand(program);
  return program;
}
