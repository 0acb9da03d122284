/**
 * commander, loaded as CommonJS so that `drover start` can drop it once argv
 * is parsed and the node runs (issue 24, worker RSS): commander and a parsed
 * start tree are ~0.6 MiB of live heap, and a worker's peak holds each MiB of
 * its live heap (docs/benchmarks.md, ninth pass). Types come from
 * `import type`; values through `commander()`.
 */
import { dropPackage, requirePackage } from '../core/require-cache.js';

type Commander = typeof import('commander');

let loaded: Commander | null = null;

/** commander's exports, loaded at the first call (again after `releaseCommander`). */
export function commander(): Commander {
  loaded ??= requirePackage<Commander>('commander');
  return loaded;
}

/** Forget commander: its modules leave the require cache; the caller must hold no command tree. */
export function releaseCommander(): void {
  loaded = null;
  dropPackage('commander');
}
