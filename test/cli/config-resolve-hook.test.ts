/**
 * A plain `.mjs` config is loaded without the `drover` resolve hook when the
 * hook could change nothing (issue 24, worker RSS: on Node 20 the hook is a
 * loader thread with its own V8 isolate, about 10 MiB): every module the
 * config reaches is a builtin, a relative file, or a `drover` import that
 * already resolves to this installation. Anything it cannot be sure of keeps
 * the hook (test/e2e/thread-configs.test.ts runs such configs end to end).
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { importConfig, needsResolveHook } from '../../src/runtime/user-module.mjs';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
let dir = '';
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = '';
});

function files(entries: Record<string, string>): string {
  dir = mkdtempSync(join(tmpdir(), 'drover-resolve-hook-'));
  for (const [name, text] of Object.entries(entries)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

describe('needsResolveHook', () => {
  it('is false for a config of builtins and relative files, followed through every file', async () => {
    const root = files({
      'drover.config.mjs': "import { writeFileSync } from 'node:fs';\nimport { run } from './lib/run.mjs';\nimport data from './data.json' with { type: 'json' };\nexport default { handlers: [{ name: 'h', run }], data };\n",
      'lib/run.mjs': "import {\n  isMainThread,\n} from 'worker_threads';\nexport * from './more.mjs';\nexport async function run() { return (await import('node:os')).hostname(); }\n",
      'lib/more.mjs': "import '../side.mjs';\nexport const more = 1;\n",
      'side.mjs': '',
      'data.json': '{}',
    });
    expect(needsResolveHook(join(root, 'drover.config.mjs'))).toBe(false);
    // And it loads without the hook.
    expect(await importConfig(join(root, 'drover.config.mjs'))).toMatchObject({ handlers: [{ name: 'h' }] });
  });

  it('is false when `drover` resolves to this installation without it', () => {
    const root = files({ 'drover.config.mjs': "import { defineConfig } from 'drover';\nimport { createClient } from 'drover/client';\nexport default defineConfig({ handlers: [] });\n" });
    mkdirSync(join(root, 'node_modules'));
    symlinkSync(REPO, join(root, 'node_modules', 'drover'), 'dir');
    expect(needsResolveHook(join(root, 'drover.config.mjs'))).toBe(false);
  });

  it.each([
    ['`drover` that does not resolve from there', { 'drover.config.mjs': "import { defineConfig } from 'drover';\nexport default defineConfig({ handlers: [] });\n" }],
    ['`drover/client` imported by a file the config imports', { 'drover.config.mjs': "import './lib/a.mjs';\nexport default { handlers: [] };\n", 'lib/a.mjs': "export const c = await import('drover/client');\n" }],
    ['a package (it may import `drover` itself)', { 'drover.config.mjs': "import pino from 'pino';\nexport default { handlers: [] };\n" }],
    ['a computed import()', { 'drover.config.mjs': "const name = 'drover';\nexport default { handlers: [], x: await import(name) };\n" }],
    ['a template-literal import()', { 'drover.config.mjs': 'export default { handlers: [], x: await import(`drover`) };\n' }],
    ['a computed require()', { 'drover.config.mjs': "import { createRequire } from 'node:module';\nconst name = 'drover';\nexport default { handlers: [], x: createRequire(import.meta.url)(name) };\n" }],
    ['a relative file that cannot be read', { 'drover.config.mjs': "import './missing.mjs';\nexport default { handlers: [] };\n" }],
  ])('is true for %s', (_what, entries) => {
    const root = files(entries);
    expect(needsResolveHook(join(root, 'drover.config.mjs'))).toBe(true);
  });
});
