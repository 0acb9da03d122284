/**
 * Packages loaded as CommonJS so that a node can drop them once they have
 * done their part (issue 24, worker RSS): an ES module stays for the life of
 * the process, a CommonJS module taken out of `require.cache` is collected
 * like any object once nothing else holds it. zod (core/zod.ts) and commander
 * (cli/commander.ts) go this way.
 */
import { createRequire } from 'node:module';
import { sep } from 'node:path';

/** `require(name)` from this file: a require of its own, whose parent lists the package among its children (dropped with it). */
export function requirePackage<T>(name: string): T {
  return createRequire(import.meta.url)(name) as T;
}

/** Take every module under node_modules/<name>/ out of the require cache. */
export function dropPackage(name: string): void {
  const cache = createRequire(import.meta.url).cache;
  const marker = `${sep}node_modules${sep}${name}${sep}`;
  for (const [file, module] of Object.entries(cache)) {
    if (!file.includes(marker)) continue;
    // A parent's `children` would keep a removed module reachable.
    module?.children.splice(0);
    delete cache[file];
  }
}
