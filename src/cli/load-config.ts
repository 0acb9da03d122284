/**
 * Load the user's config module (TypeScript or JavaScript) without a build
 * step. tsx transpiles .ts on import, in this process, so handlers run in the
 * runtime itself rather than behind a wrapper process; handler threads load
 * it the same way (runtime/user-module.mjs), wherever the file lives.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { DroverError, toError } from '../core/errors.js';
import { importConfig } from '../runtime/user-module.mjs';

export const DEFAULT_CONFIG_PATH = './drover.config.ts';

export async function loadConfigModule(path: string = DEFAULT_CONFIG_PATH): Promise<unknown> {
  const absolute = resolve(path);
  if (!existsSync(absolute)) {
    throw new DroverError('config_invalid', `config file not found: ${absolute}; pass --config FILE (see examples/drover.config.ts)`);
  }
  let exported: unknown;
  try {
    exported = await importConfig(absolute);
  } catch (error) {
    throw new DroverError('config_invalid', `could not load config ${absolute}: ${toError(error).message}`, { cause: error });
  }
  if (exported === null) {
    throw new DroverError('config_invalid', `config ${absolute} has no default export; write \`export default defineConfig({ handlers: [...] })\``);
  }
  return exported;
}
