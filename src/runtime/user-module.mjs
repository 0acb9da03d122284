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
import Module, { isBuiltin, register } from 'node:module';
import { dirname, extname, resolve as resolvePath } from 'node:path';
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
const nativeResolveFilename = Module._resolveFilename;

/** Make `drover` importable (and require()-able) from any file this thread loads; idempotent. */
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
  const plain = path.endsWith('.mjs');
  // A plain config that needs no hook reaches `drover` (if at all) by Node's own resolution, and
  // cannot require() anything by a name the scan did not see: the require() half is not needed
  // either, and leaving it out keeps drover's public entry points (the SDK client and worker, and
  // node:https with them) out of a node that never imports them (issue 24, worker RSS).
  if (!plain || needsResolveHook(path)) await installDroverResolution();
  const url = pathToFileURL(path).href;
  let module;
  if (plain) {
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

/** `import … from '…'`, `export … from '…'`, `import '…'`: the specifier. */
const STATIC_IMPORT = /\b(?:import|export)\s*(?:[\w*${}\s,]*?\bfrom\s*)?(['"])([^'"\n]+)\1/g;
/** `import(…)` and `require(…)`: a literal specifier, or anything else (then the file may load what cannot be known here). */
const DYNAMIC_IMPORT = /\b(?:import|require)\s*\(\s*(?:(['"])([^'"\n]+)\1\s*[,)])?/g;

/**
 * Whether an `.mjs` config may import `drover` through the resolve hook (issue 24, worker RSS): the hook
 * is a module.register() loader, which on Node 20 runs in a thread of its own with its own V8 isolate,
 * about 10 MiB of every node's memory for as long as it runs. It changes the answer only for `drover`
 * and `drover/…` imports that do not already resolve to this installation. So it is left out only when
 * that is certain: every module the config imports, followed file by file from the config, is a Node
 * builtin, a relative file (read and scanned the same way), or a `drover` import that resolves natively to
 * this installation, and no `import()` takes a computed specifier. Anything else (a package, an unreadable
 * file, a computed import) keeps the hook. TypeScript and `.js` configs load through tsx, whose own loader
 * runs in that thread anyway, so they always have it.
 */
export function needsResolveHook(configPath) {
  const seen = new Set();
  const pending = [resolvePath(configPath)];
  while (pending.length > 0) {
    const file = pending.pop();
    if (seen.has(file)) continue;
    seen.add(file);
    if (extname(file) === '.json') continue;
    let source;
    try {
      source = readFileSync(file, 'utf8');
    } catch {
      return true;
    }
    const specifiers = [...source.matchAll(STATIC_IMPORT)].map((m) => m[2]);
    // A require function made in ESM may load anything, by any name.
    if (source.includes('createRequire')) return true;
    for (const m of source.matchAll(DYNAMIC_IMPORT)) {
      if (m[2] === undefined) return true;
      specifiers.push(m[2]);
    }
    for (const specifier of specifiers) {
      if (isBuiltin(specifier)) continue;
      if (specifier.startsWith('./') || specifier.startsWith('../') || specifier.startsWith('/') || specifier.startsWith('file:')) {
        pending.push(specifier.startsWith('file:') ? fileURLToPath(specifier) : resolvePath(dirname(file), specifier));
      } else if (!(specifier in ENTRIES) || !resolvesHere(specifier, file)) {
        return true;
      }
    }
  }
  return false;
}

/** Whether `specifier` (`drover`, `drover/client`, …) imported from `file` reaches this installation without the hook. */
function resolvesHere(specifier, file) {
  try {
    const exports = JSON.parse(readFileSync(fileURLToPath(PACKAGE_JSON_URL), 'utf8')).exports;
    const ours = fileURLToPath(new URL(exports[ENTRIES[specifier]].default, PACKAGE_JSON_URL));
    // Node's own resolution, not the one installDroverResolution patches in (it answers `drover` from anywhere).
    const parent = new Module(file);
    parent.filename = file;
    parent.paths = Module._nodeModulePaths(dirname(file));
    return nativeResolveFilename.call(Module, specifier, parent, false) === ours;
  } catch {
    return false;
  }
}
