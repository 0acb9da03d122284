/**
 * Checks of what a process loads and keeps (issue 24, worker RSS): a module script run in a fresh child
 * process with `--expose-gc`, on the built modules; e.g. that a package dropped from the require cache is
 * collected (core/require-cache.ts).
 */
import { execFileSync } from 'node:child_process';

/** A built module's URL, quoted for the script. */
export const dist = (path: string) => JSON.stringify(new URL(`../../dist/${path}`, import.meta.url).href);

/** Script text: run `release`, then collect, and define `cached()`: how many of `pkg`'s modules the require cache holds. */
export const releaseAndCollect = (release: string, pkg: string) => `
  ${release};
  // A WeakRef holds its target until the job that made it ends.
  await new Promise((resolve) => setTimeout(resolve, 10));
  globalThis.gc();
  const cached = () => Object.keys(createRequire(import.meta.url).cache).filter((file) => file.includes('/node_modules/${pkg}/')).length;`;

/** Run `script` (it imports createRequire from node:module itself) and parse what it wrote to stdout. */
export function runGcChild<T>(script: string): T {
  const out = execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' }, timeout: 20_000 });
  return JSON.parse(out) as T;
}
