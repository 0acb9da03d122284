/**
 * The `drover` command. Each subcommand is a small module; program.ts
 * declares them, this file runs them. Errors reach the user as one line
 * saying what to do, with a non-zero exit code.
 */
import { Option } from 'commander';
import { DroverError, toError } from '../core/errors.js';
import { loadSecretFiles } from './secret-files.js';
import { buildProgram } from './program.js';

const program = buildProgram();

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
