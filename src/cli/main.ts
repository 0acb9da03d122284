/**
 * The `drover` command. Each subcommand is a small module; program.ts
 * declares them, this file runs them. Errors reach the user as one line
 * saying what to do, with a non-zero exit code.
 */
import type { Command } from 'commander';
import { DroverError, toError } from '../core/errors.js';
import { commander, releaseCommander } from './commander.js';
import { loadSecretFiles } from './secret-files.js';

/**
 * Exit codes (sysexits.h, like 78 for a bad config): a usage error (unknown
 * option, missing or invalid option value) is 64, so a script can tell it
 * from a command's own codes (`drover doctor --url`: 1 degraded, 2 unhealthy,
 * 3 unreachable). Commander has printed the error and the usage by then.
 */
export const EXIT_USAGE = 64;
export const EXIT_CONFIG = 78;

// `drover start` (a long-running node) gets a tree of start alone: the other commands' modules stay unloaded.
const starting = process.argv[2] === 'start';
/** Whether Commander printed the error it threw (a parse error); a command's own usage error it does not print. */
let printed = false;
// Throw instead of exiting, on every subcommand (exitOverride is not inherited by commands already built).
const overrideExit = (command: Command): void => {
  command.exitOverride();
  command.configureOutput({
    outputError: (text, write) => {
      printed = true;
      write(text);
    },
  });
  command.commands.forEach(overrideExit);
};

try {
  loadSecretFiles(process.env);
  await parse();
  // The node runs on its own now: commander and the parsed tree (~0.6 MiB of heap) can go (cli/commander.ts).
  if (starting) releaseCommander();
} catch (error) {
  // Not released yet: the parse threw, so this is the commander that threw it.
  if (error instanceof commander().CommanderError) {
    // --help and --version end with exit code 0; anything else is a usage error, printed here unless Commander did.
    if (error.exitCode !== 0 && !printed) process.stderr.write(`drover: ${error.message.replace(/^error: /, '')}\n`);
    process.exitCode = error.exitCode === 0 ? 0 : EXIT_USAGE;
  } else {
    reportFailure(error);
  }
}

/** Build the tree and parse argv; the tree is garbage once this returns. */
async function parse(): Promise<void> {
  const program = starting ? (await import('./root-command.js')).buildStartProgram() : (await import('./program.js')).buildProgram();
  overrideExit(program);
  await program.parseAsync(process.argv);
}

function reportFailure(error: unknown): void {
  const err = toError(error);
  process.stderr.write(`drover: ${err.message}\n`);
  if (!(err instanceof DroverError) && process.env.DROVER_DEBUG) process.stderr.write(`${err.stack}\n`);
  process.exitCode = err instanceof DroverError && err.code === 'config_invalid' ? EXIT_CONFIG : 1;
}
