/**
 * Import the user's config module, in the main thread and in handler threads
 * alike. Plain JavaScript on purpose: a handler thread imports this file
 * before any TypeScript loader exists in it (from src/ in tests, from dist/
 * in a build; scripts/copy-assets.mjs copies it).
 *
 * Two things make a config work wherever it lives:
 * - TypeScript (and ESM-syntax .js outside a "type": "module" package) goes
 *   through tsx's ESM build. Its CommonJS build (what `require.resolve` picks)
 *   registers its loader by a path that does not exist on Node < 22.15
 *   (`tsx/dist/esm/api/esm/index.mjs`), which is why `.ts` configs failed in
 *   threads.
 * - The bare specifier `drover` (and `drover/client`, `drover/worker`) is
 *   resolved to this installation, so a config in /etc/drover, with no
 *   node_modules beside it, can `import { defineConfig } from 'drover'`.
 *   Imports go through a module.register() resolve hook (Node >= 20.6);
 *   require() - tsx compiles a .ts outside an ESM package to CommonJS - goes
 *   through Module._resolveFilename, answered from the require cache with the
 *   very module namespaces the hook resolves to, so both paths share one copy
 *   of drover (NonRetryableError is one class) and neither needs require(esm).
 */
import { readFileSync } from 'node:fs';
import Module, { register } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The specifiers a config may import; each maps through this package's own `exports`. */
const ENTRIES = { drover: '.', 'drover/client': './client', 'drover/worker': './worker' };

// Resolving a self-reference needs a parent inside the package: its package.json (src/runtime/ and dist/runtime/ are both two levels down).
const PACKAGE_JSON_URL = new URL('../../package.json', import.meta.url).href;

const HOOKS = `
let parentURL;
export function initialize(data) { parentURL = data.parentURL; }
export function resolve(specifier, context, next) {
  if (specifier === 'drover' || specifier.startsWith('drover/')) return next(specifier, { ...context, parentURL });
  return next(specifier, context);
}`;

let installed = null;

/** Make `drover` importable from any file this thread loads; idempotent. */
export function installDroverResolution() {
  installed ??= (async () => {
    register(`data:text/javascript,${encodeURIComponent(HOOKS)}`, { data: { parentURL: PACKAGE_JSON_URL } });
    const files = new Map();
    const { exports } = JSON.parse(readFileSync(fileURLToPath(PACKAGE_JSON_URL), 'utf8'));
    for (const [specifier, subpath] of Object.entries(ENTRIES)) {
      const url = new URL(exports[subpath].default, PACKAGE_JSON_URL).href;
      const filename = fileURLToPath(url);
      const cached = new Module(filename);
      cached.filename = filename;
      cached.exports = await import(url);
      cached.loaded = true;
      Module._cache[filename] = cached;
      files.set(specifier, filename);
    }
    const resolveFilename = Module._resolveFilename;
    Module._resolveFilename = function (request, ...rest) {
      return files.get(request) ?? resolveFilename.call(this, request, ...rest);
    };
  })();
  return installed;
}

/**
 * Import a config module by path and return its default export (null when it has none).
 * @example
 * const config = await importConfig('/etc/drover/drover.config.ts');
 */
export async function importConfig(path) {
  await installDroverResolution();
  const url = pathToFileURL(path).href;
  let module;
  if (path.endsWith('.mjs')) {
    module = await import(url);
  } else {
    const { tsImport } = await import('tsx/esm/api');
    module = await tsImport(url, import.meta.url);
  }
  // tsx may wrap a CommonJS-style default once more.
  let exported = module.default;
  if (exported && typeof exported === 'object' && 'default' in exported && !('handlers' in exported)) exported = exported.default;
  return exported === undefined ? null : exported;
}
