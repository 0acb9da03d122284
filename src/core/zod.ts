/**
 * zod, for validating the config file, loaded as CommonJS so that a node can
 * drop it once its config is resolved (issue 24, worker RSS): an ES module
 * stays for the life of the process, a CommonJS module taken out of
 * `require.cache` is collected like any object. zod (95 modules, 64 of them
 * locales its core imports) and the config schema built with it are ~3 MiB
 * of a node's live heap (docs/benchmarks.md, sixth pass).
 */
import { createRequire } from 'node:module';
import { sep } from 'node:path';
import type { z as Zod } from 'zod';

export type Z = typeof Zod;

let loaded: Z | null = null;

/** zod's `z`, loaded at the first call after start or after `releaseZod`. */
export function zod(): Z {
  if (!loaded) {
    // A require of its own: the module it stands for lists zod among its children, and must go with it.
    const require = createRequire(import.meta.url);
    loaded = (require('zod') as { z: Z }).z;
  }
  return loaded;
}

/** Forget zod: its modules leave the require cache, and whatever the caller no longer holds of it is garbage. */
export function releaseZod(): void {
  loaded = null;
  const cache = createRequire(import.meta.url).cache;
  const marker = `${sep}node_modules${sep}zod${sep}`;
  for (const [file, module] of Object.entries(cache)) {
    if (!file.includes(marker)) continue;
    // A parent's `children` would keep a removed module reachable.
    module?.children.splice(0);
    delete cache[file];
  }
}
