/**
 * `drover start --low-memory` (DROVER_LOW_MEMORY=true): a smaller V8 heap
 * for more GC work (issue 24, worker RSS). Under a drain most of a worker's
 * growth is garbage, not live data: the young generation (two 16 MiB
 * semi-spaces by default) and the leased jobs that outlive two scavenges and
 * die in old space, which V8 lets grow to about 3× the live heap before a
 * major GC. This mode lets old space grow by only HEAP_GROWING_PERCENT after
 * each major GC.
 *
 * The young generation's limit is fixed when the process starts
 * (`v8.setFlagsFromString('--max-semi-space-size=4')` later changes nothing),
 * and a re-exec would be a wrapper process. What can be set at run time is
 * how much it grows: V8 doubles a semi-space (`--semi-space-growth-factor`,
 * read at each growth) from 1 MiB up to 16 MiB. So without the `node` flag
 * this mode watches the GCs and sets the factor to 1 once a semi-space
 * reached SEMI_SPACE_MB, and back to 2 below it (`capYoungGeneration`). V8
 * resets the factor to 2 whenever it creates an isolate (a handler thread, the
 * module loader thread that a TypeScript config needs); the next GC's check
 * sets it again. NODE_OPTIONS=--max-semi-space-size=4 remains the exact cap.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import v8 from 'node:v8';

/** Old space may grow by this much past what a major GC left (V8's own factor is 1.1–4×, mostly near 3× here). */
export const HEAP_GROWING_PERCENT = 20;
/** The young-generation cap the docs recommend with this mode, MiB per semi-space. */
export const SEMI_SPACE_MB = 4;

export interface LowMemory {
  heapGrowingPercent: number;
  /** The `--max-semi-space-size` the process was started with (MiB), or null: V8's default, 16. */
  semiSpaceMb: number | null;
  /** Without that flag: the semi-space size at which `capYoungGeneration` stops its growth (MiB), else null. */
  semiSpaceCapMb: number | null;
  appliedAt: 'launch' | 'start';
}

export function wantsLowMemory(option: boolean | undefined, env: NodeJS.ProcessEnv): boolean {
  return option === true || env.DROVER_LOW_MEMORY === 'true';
}

/** The `--max-semi-space-size` given to this process, from its own flags or NODE_OPTIONS (the later one wins, as in node). */
export function semiSpaceFlag(execArgv: readonly string[], nodeOptions: string | undefined): number | null {
  let mb: number | null = null;
  for (const arg of [...(nodeOptions ?? '').split(/\s+/), ...execArgv]) {
    const match = /^--max[-_]semi[-_]space[-_]size=(\d+)$/.exec(arg);
    if (match) mb = Number(match[1]);
  }
  return mb;
}

/** Where the flags were set: by `bin/drover` before any module loaded (so the first major GC's limit already uses them), or by `start`. */
let appliedAt: 'launch' | 'start' | null = null;

/**
 * bin/drover's check, before it loads the CLI: `drover start … --low-memory` or DROVER_LOW_MEMORY=true.
 * Loading the modules runs the first major GC, and V8 sizes the next old-space limit from it, so the flag set
 * later (by the command) would take effect only at the next major GC, under load.
 */
export function lowMemoryAtLaunch(argv: readonly string[], env: NodeJS.ProcessEnv): void {
  if (launchWantsLowMemory(argv, env)) applyLowMemory('launch');
}

/** The arguments after `drover`: the `start` command with the option, or the variable set. */
export function launchWantsLowMemory(argv: readonly string[], env: NodeJS.ProcessEnv): boolean {
  return argv[0] === 'start' && wantsLowMemory(argv.includes('--low-memory') || undefined, env);
}

/** Set the V8 flags this mode can set at run time (once; a later call only reports them). */
export function applyLowMemory(at: 'launch' | 'start' = 'start', execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS): LowMemory {
  const semiSpaceMb = semiSpaceFlag(execArgv, nodeOptions);
  if (appliedAt === null) {
    v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
    if (semiSpaceMb === null) capYoungGeneration(SEMI_SPACE_MB);
    appliedAt = at;
  }
  return { heapGrowingPercent: HEAP_GROWING_PERCENT, semiSpaceMb, semiSpaceCapMb: semiSpaceMb === null ? SEMI_SPACE_MB : null, appliedAt };
}

let youngCap: PerformanceObserver | null = null;

/**
 * Keep the young generation's semi-spaces at about `mb` MiB from here on, without the `node` flag: after each
 * GC, growth is turned off (factor 1) once a semi-space is `mb` or more, and on again (factor 2) below it. A
 * growth that happens between two checks can overshoot once, to the next doubling; none follows. Idempotent.
 */
export function capYoungGeneration(mb: number): void {
  if (youngCap) return;
  let growing: boolean | null = null;
  const check = (): void => {
    const newSpace = v8.getHeapSpaceStatistics().find((space) => space.space_name === 'new_space');
    if (!newSpace) return;
    // new_space's size counts both semi-spaces.
    const grow = newSpace.space_size / 2 < mb * 1024 * 1024;
    // Set again on every check, not only on a change: V8 puts the factor back to 2 when it creates an isolate.
    if (grow !== growing || !grow) v8.setFlagsFromString(`--semi-space-growth-factor=${grow ? 2 : 1}`);
    growing = grow;
  };
  youngCap = new PerformanceObserver(check);
  youngCap.observe({ entryTypes: ['gc'] });
  check();
}

/** The start log's line for it: what is set, and the young-generation flag when it is missing. */
export function describeLowMemory(applied: LowMemory): { fields: Record<string, unknown>; message: string } {
  const fields = { heap_growing_percent: applied.heapGrowingPercent, max_semi_space_mb: applied.semiSpaceMb, semi_space_cap_mb: applied.semiSpaceCapMb, applied_at: applied.appliedAt };
  if (applied.semiSpaceMb !== null) return { fields, message: 'low-memory mode: old-space growth and the young generation are capped' };
  return {
    fields,
    message: `low-memory mode: old-space growth is capped, and the young generation's growth stops at ${SEMI_SPACE_MB} MiB semi-spaces (NODE_OPTIONS=--max-semi-space-size=${SEMI_SPACE_MB} caps it from the process start)`,
  };
}
