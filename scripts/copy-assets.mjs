// tsc does not copy non-TypeScript files; migrations ship as .sql beside the engine that runs them.
import { cpSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const engines = ['sqlite', 'postgres'];
for (const engine of engines) {
  const from = join('src', 'store', engine, 'migrations');
  let files;
  try { files = readdirSync(from); } catch { continue; }
  const to = join('dist', 'store', engine, 'migrations');
  mkdirSync(to, { recursive: true });
  for (const f of files.filter((f) => f.endsWith('.sql'))) cpSync(join(from, f), join(to, f));
}

// Plain-JavaScript modules a handler thread imports before it has a TypeScript loader (src/runtime/user-module.mjs).
for (const f of readdirSync(join('src', 'runtime')).filter((f) => f.endsWith('.mjs') || f.endsWith('.d.mts'))) {
  cpSync(join('src', 'runtime', f), join('dist', 'runtime', f));
}
