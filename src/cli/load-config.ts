/**
 * Load the user's config module (TypeScript or JavaScript) without a build
 * step. tsx transpiles .ts on import, in this process, so handlers run in the
 * runtime itself rather than behind a wrapper process.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { tsImport } from 'tsx/esm/api';
import { DroverError, toError } from '../core/errors.js';

export const DEFAULT_CONFIG_PATH = './drover.config.ts';

export async function loadConfigModule(path: string = DEFAULT_CONFIG_PATH): Promise<unknown> {
  const absolute = resolve(path);
  if (!existsSync(absolute)) {
    throw new DroverError('config_invalid', `config file not found: ${absolute}; pass --config FILE (see examples/drover.config.ts)`);
  }
  let module: { default?: unknown };
  try {
    module = /\.(c|m)?ts$/.test(absolute) ? await tsImport(pathToFileURL(absolute).href, import.meta.url) : await import(pathToFileURL(absolute).href);
  } catch (error) {
    throw new DroverError('config_invalid', `could not load config ${absolute}: ${toError(error).message}`, { cause: error });
  }
  // tsx may wrap a CommonJS-style default once more.
  let exported = module.default;
  if (exported && typeof exported === 'object' && 'default' in exported && !('handlers' in exported)) {
    exported = (exported as { default: unknown }).default;
  }
  if (exported === undefined) {
    throw new DroverError('config_invalid', `config ${absolute} has no default export; write \`export default defineConfig({ handlers: [...] })\``);
  }
  return exported;
}
