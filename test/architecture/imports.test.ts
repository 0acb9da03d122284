/**
 * Issue 17 "How to check it": the import rules of shared/DESIGN.md hold for
 * every file in src/ (rules and parser: import-rules.ts).
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { scan, violations } from './import-rules.js';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

const scanned = scan(SRC);
const found = violations(scanned);

describe('import rules (shared/DESIGN.md "Architecture")', () => {
  it('reads the imports of every source file, type-only and dynamic ones included', () => {
    const froms = new Set(scanned.imports.map((imp) => imp.from));
    expect(froms.size).toBeGreaterThan(150);
    expect(scanned.imports.some((imp) => imp.typeOnly)).toBe(true);
    // store/open.ts loads the engines lazily: dynamic imports must be seen too.
    expect(scanned.imports.some((imp) => imp.from === 'store/open.ts' && imp.target?.startsWith('store/sqlite/'))).toBe(true);
  });

  it('no module imports from a layer above its own (cli → node → api → ops → runtime → obs → store → core)', () => {
    expect(found.layers).toEqual([]);
  });

  it('nothing outside src/store/ imports a file of an engine (src/store/sqlite/, src/store/postgres/)', () => {
    expect(found.engineFiles).toEqual([]);
  });

  it('only an engine imports its driver (pg, better-sqlite3)', () => {
    expect(found.drivers).toEqual([]);
  });

  it('src/api/ changes no job through the store: transitions go through the runtime', () => {
    expect(found.apiTransitions).toEqual([]);
  });

  it('each rule flags the import it forbids (a made-up scan)', () => {
    const imp = (from: string, specifier: string, target: string | null, typeOnly = false) => ({ from, specifier, target, typeOnly, line: 1 });
    const bad = violations({
      imports: [
        imp('obs/job-metrics.ts', '../runtime/lifecycle.js', 'runtime/lifecycle.js', true),
        imp('node/start-node.ts', '../cli/program.js', 'cli/program.js'),
        imp('runtime/x.ts', '../sdk/client.js', 'sdk/client.js'),
        imp('ops/backup/x.ts', '../../store/sqlite/backup.js', 'store/sqlite/backup.js'),
        imp('api/x.ts', 'pg', null),
        imp('store/open.ts', './sqlite/sqlite-engine.js', 'store/sqlite/sqlite-engine.js'),
        imp('store/sqlite/connection.ts', 'better-sqlite3', null),
        imp('cli/main.ts', '../node/start-node.js', 'node/start-node.js'),
      ],
      storeCalls: [
        { file: 'api/routes/x.ts', callee: 'runtime.store.complete', method: 'complete', line: 1 },
        { file: 'runtime/x.ts', callee: 'this.store.complete', method: 'complete', line: 1 },
      ],
    });
    expect(bad.layers).toEqual([
      'obs/job-metrics.ts imports types from runtime/lifecycle.js (obs/ imports runtime/, a layer above it)',
      'node/start-node.ts imports cli/program.js (node/ imports cli/, a layer above it)',
      'runtime/x.ts imports sdk/client.js (only the package entry imports sdk/ (client code))',
    ]);
    expect(bad.engineFiles).toEqual(["ops/backup/x.ts imports store/sqlite/backup.js (an engine's file; go through the seam in src/store/)"]);
    expect(bad.drivers).toEqual(['api/x.ts imports pg (only store/postgres/ may)']);
    expect(bad.apiTransitions).toEqual(['api/routes/x.ts calls runtime.store.complete (a job transition; the runtime owns it)']);
  });
});
