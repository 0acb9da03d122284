/**
 * zod, for validating the config file, loaded as CommonJS so that a node can
 * drop it once its config is resolved (issue 24, worker RSS): an ES module
 * stays for the life of the process, a CommonJS module taken out of
 * `require.cache` is collected like any object. zod (95 modules, 64 of them
 * locales its core imports) and the config schema built with it are ~3 MiB
 * of a node's live heap (docs/benchmarks.md, sixth pass).
 */
import type { z as Zod } from 'zod';
import { dropPackage, requirePackage } from './require-cache.js';

export type Z = typeof Zod;

let loaded: Z | null = null;

/** zod's `z`, loaded at the first call after start or after `releaseZod`. */
export function zod(): Z {
  loaded ??= requirePackage<{ z: Z }>('zod').z;
  return loaded;
}

/** Forget zod: its modules leave the require cache, and whatever the caller no longer holds of it is garbage. */
export function releaseZod(): void {
  loaded = null;
  dropPackage('zod');
}
