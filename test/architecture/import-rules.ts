/**
 * The import rules of shared/DESIGN.md "Architecture", read from the source
 * with the TypeScript parser (no build, no regex guessing at syntax):
 *
 * - layers import only downward: cli → node → api → ops → runtime → obs →
 *   store → core (the same layer is fine);
 * - nothing outside `src/store/` imports an engine's files
 *   (`src/store/sqlite/**`, `src/store/postgres/**`): only the seam
 *   (`engine.ts`) and the factories beside it (`open.ts`, `instrumented.ts`);
 * - nothing outside an engine's folder imports its driver (`pg`,
 *   `better-sqlite3`);
 * - `src/api/` changes no job through the store: a call of a transition
 *   method on a `store` (`runtime.store.cancel(…)`, `store.complete(…)`)
 *   belongs in `runtime/`.
 *
 * Type-only imports count. A type is part of a layer's contract: `obs/`
 * naming `runtime/`'s `Lifecycle` type is the very arrow issue 17 calls
 * running back up, even though the compiler erases it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

/** Bottom to top; a module may import its own layer and the ones before it. */
export const LAYERS = ['core', 'store', 'obs', 'runtime', 'ops', 'api', 'node', 'cli'] as const;

/** Store methods that change a job (its state, lease or attempts). */
export const TRANSITIONS = new Set([
  'ingest', 'enqueue', 'lease', 'start', 'heartbeat', 'complete', 'fail', 'release', 'cancel', 'retry',
  'stageDue', 'reapExpired', 'reclaimWorker', 'reclaimDeadNodes', 'reclaimAll', 'prune', 'restampJobs',
]);

const ENGINE_DIRS = ['store/sqlite/', 'store/postgres/'];
const DRIVERS: Record<string, string> = { pg: 'store/postgres/', 'better-sqlite3': 'store/sqlite/' };

export interface Import {
  /** Importing file, relative to src/ with `/` separators. */
  from: string;
  /** The specifier as written. */
  specifier: string;
  /** The imported file relative to src/ (`.js` as written), or null for a package or a file outside src/. */
  target: string | null;
  typeOnly: boolean;
  line: number;
}

export interface StoreCall {
  file: string;
  /** The call as written up to its arguments, e.g. `runtime.store.cancel`. */
  callee: string;
  method: string;
  line: number;
}

/**
 * Which layer a file (relative to src/) belongs to. `version.ts` (the package
 * version, a leaf) counts as core; `index.ts` (the package's public API) and
 * `sdk/` (the client library, a column of its own) sit outside the stack.
 */
export function layerOf(file: string): string {
  if (file === 'version.ts' || file === 'version.js') return 'core';
  if (file === 'index.ts') return 'entry';
  return file.split('/')[0]!;
}

/** Every source file under `srcDir`, relative, with `/` separators. */
export function sourceFiles(srcDir: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (/\.(ts|mts|mjs|js)$/.test(entry.name)) out.push(relative(srcDir, path).split(sep).join('/'));
    }
  };
  walk(srcDir);
  return out.sort();
}

/** The imports and `store` transition calls of every file under `srcDir`. */
export function scan(srcDir: string): { imports: Import[]; storeCalls: StoreCall[] } {
  const imports: Import[] = [];
  const storeCalls: StoreCall[] = [];
  for (const file of sourceFiles(srcDir)) {
    const text = readFileSync(join(srcDir, file), 'utf8');
    const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, file.endsWith('.mjs') || file.endsWith('.js') ? ts.ScriptKind.JS : ts.ScriptKind.TS);
    const line = (node: ts.Node) => source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
    const add = (node: ts.Node, specifier: string, typeOnly: boolean) => {
      let target: string | null = null;
      if (specifier.startsWith('.')) {
        const path = relative(srcDir, resolve(dirname(join(srcDir, file)), specifier)).split(sep).join('/');
        target = path.startsWith('..') ? null : path;
      }
      imports.push({ from: file, specifier, target, typeOnly, line: line(node) });
    };
    const visit = (node: ts.Node): void => {
      if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
        add(node, node.moduleSpecifier.text, isTypeOnly(node));
      } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
        add(node, node.argument.literal.text, true);
      } else if (ts.isCallExpression(node)) {
        const [arg] = node.arguments;
        const dynamic = node.expression.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(node.expression) && node.expression.text === 'require');
        if (dynamic && arg && ts.isStringLiteralLike(arg)) add(node, arg.text, false);
        const callee = node.expression;
        if (ts.isPropertyAccessExpression(callee) && TRANSITIONS.has(callee.name.text) && receiverName(callee.expression) === 'store') {
          storeCalls.push({ file, callee: callee.getText(source).replace(/\s+/g, ''), method: callee.name.text, line: line(node) });
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return { imports, storeCalls };
}

function isTypeOnly(node: ts.ImportDeclaration | ts.ExportDeclaration): boolean {
  if (ts.isExportDeclaration(node)) return node.isTypeOnly;
  const clause = node.importClause;
  if (!clause) return false; // a side-effect import
  if (clause.isTypeOnly) return true;
  const named = clause.namedBindings;
  return !clause.name && !!named && ts.isNamedImports(named) && named.elements.length > 0 && named.elements.every((e) => e.isTypeOnly);
}

/** `store` for `store`, `this.store`, `runtime.store`, `deps.store`; the last name of the receiver. */
function receiverName(node: ts.Expression): string | null {
  if (ts.isIdentifier(node)) return node.text;
  if (ts.isPropertyAccessExpression(node)) return node.name.text;
  return null;
}

/** One line per broken rule, stable across edits elsewhere in the file (no line numbers). */
export function violations(scanned: { imports: Import[]; storeCalls: StoreCall[] }): { layers: string[]; engineFiles: string[]; drivers: string[]; apiTransitions: string[] } {
  const layers: string[] = [];
  const engineFiles: string[] = [];
  const drivers: string[] = [];
  for (const imp of scanned.imports) {
    const from = layerOf(imp.from);
    const kind = imp.typeOnly ? 'imports types from' : 'imports';
    if (imp.target === null) {
      const home = DRIVERS[imp.specifier];
      if (home && !imp.from.startsWith(home)) drivers.push(`${imp.from} imports ${imp.specifier} (only ${home} may)`);
      continue;
    }
    const to = layerOf(imp.target);
    if (ENGINE_DIRS.some((dir) => imp.target!.startsWith(dir)) && from !== 'store') {
      engineFiles.push(`${imp.from} ${kind} ${imp.target} (an engine's file; go through the seam in src/store/)`);
    }
    if (from === to) continue;
    const bad = outOfOrder(from, to);
    if (bad) layers.push(`${imp.from} ${kind} ${imp.target} (${bad})`);
  }
  const apiTransitions = scanned.storeCalls
    .filter((call) => call.file.startsWith('api/'))
    .map((call) => `${call.file} calls ${call.callee} (a job transition; the runtime owns it)`);
  return { layers, engineFiles, drivers, apiTransitions: [...new Set(apiTransitions)] };
}

/** Why `from` may not import `to`, or null when it may. */
function outOfOrder(from: string, to: string): string | null {
  if (from === 'entry') return null;
  if (to === 'entry') return 'nothing imports the package entry';
  if (from === 'sdk') return to === 'core' ? null : 'sdk/ (client code) imports only core/';
  if (to === 'sdk') return 'only the package entry imports sdk/ (client code)';
  const f = LAYERS.indexOf(from as (typeof LAYERS)[number]);
  const t = LAYERS.indexOf(to as (typeof LAYERS)[number]);
  if (f < 0) return `${from}/ is in no layer: add it to LAYERS (shared/DESIGN.md "Architecture")`;
  if (t < 0) return `${to}/ is in no layer: add it to LAYERS (shared/DESIGN.md "Architecture")`;
  return t > f ? `${from}/ imports ${to}/, a layer above it` : null;
}
