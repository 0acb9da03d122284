/**
 * Secrets from files: every secret-bearing variable `X` may instead be given
 * as `X_FILE`, the path of a file holding it (Docker and Kubernetes secrets,
 * systemd `LoadCredential=`), so the secret is in neither the unit file nor
 * `/proc/<pid>/environ` of the process that set it. Read once, before any
 * command runs; a missing, unreadable or empty file stops the command with
 * the variable and the path named.
 */
import { readFileSync } from 'node:fs';
import { DroverError, toError } from '../core/errors.js';

/**
 * Each `_FILE` variable and the one it fills.
 *
 * @example
 * SECRET_FILE_VARS.DROVER_DATABASE_URL_FILE; // 'DROVER_DATABASE_URL'
 */
export const SECRET_FILE_VARS = {
  DROVER_DATABASE_URL_FILE: 'DROVER_DATABASE_URL',
  DROVER_BOOTSTRAP_ADMIN_KEY_FILE: 'DROVER_BOOTSTRAP_ADMIN_KEY',
  DROVER_API_KEY_FILE: 'DROVER_API_KEY',
} as const;

/**
 * Fill `env[X]` from the file named by `env[X_FILE]`, for every secret variable.
 * Throws `config_invalid` (exit 78) naming the variable and the file.
 *
 * @example
 * loadSecretFiles(process.env); // DROVER_DATABASE_URL_FILE=/run/secrets/db → process.env.DROVER_DATABASE_URL
 */
export function loadSecretFiles(env: NodeJS.ProcessEnv): void {
  for (const [fileVar, target] of Object.entries(SECRET_FILE_VARS)) {
    const path = env[fileVar];
    if (path === undefined || path === '') continue;
    if (env[target] !== undefined && env[target] !== '') {
      throw new DroverError('config_invalid', `both ${target} and ${fileVar} are set; set only one (${fileVar} keeps the secret out of the environment)`);
    }
    let value: string;
    try {
      value = readFileSync(path, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const hint = code === 'ENOENT' ? 'the file does not exist' : code === 'EACCES' ? 'permission denied: make it readable by the user drover runs as' : toError(error).message;
      throw new DroverError('config_invalid', `${fileVar}=${path}: cannot read the file: ${hint}`, { cause: error });
    }
    // Editors and `echo` end files with a newline; it is never part of a URL or a key.
    value = value.replace(/\r?\n$/, '');
    if (value.trim() === '') throw new DroverError('config_invalid', `${fileVar}=${path}: the file is empty; it must hold the value of ${target}`);
    env[target] = value;
  }
}
