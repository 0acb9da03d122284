/**
 * `drover start --low-memory` (DROVER_LOW_MEMORY=true): a smaller V8 heap
 * for more GC work (issue 24, worker RSS). Under a drain most of a worker's
 * growth is garbage, not live data: the young generation (two 16 MiB
 * semi-spaces by default) and the leased jobs that outlive two scavenges and
 * die in old space, which V8 lets grow to about 3× the live heap before a
 * major GC. This mode lets old space grow by only HEAP_GROWING_PERCENT after
 * each major GC.
 *
 * The young generation cannot be capped from here: V8 sizes it when the
 * process starts (`v8.setFlagsFromString('--max-semi-space-size=4')` later
 * changes nothing; `--semi-space-growth-factor=1` is undone by V8 whenever a
 * worker thread's isolate is created, which loading the config already does),
 * and a re-exec would be a wrapper process. So it takes a `node` flag:
 * NODE_OPTIONS=--max-semi-space-size=4; the start log says whether it is set.
 */
import v8 from 'node:v8';

/** Old space may grow by this much past what a major GC left (V8's own factor is 1.1–4×, mostly near 3× here). */
export const HEAP_GROWING_PERCENT = 20;
/** The young-generation cap the docs recommend with this mode, MiB per semi-space. */
export const SEMI_SPACE_MB = 4;

export interface LowMemory {
  heapGrowingPercent: number;
  /** The `--max-semi-space-size` the process was started with (MiB), or null: V8's default, 16. */
  semiSpaceMb: number | null;
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
  if (appliedAt === null) {
    v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
    appliedAt = at;
  }
  return { heapGrowingPercent: HEAP_GROWING_PERCENT, semiSpaceMb: semiSpaceFlag(execArgv, nodeOptions), appliedAt };
}

/** The start log's line for it: what is set, and the young-generation flag when it is missing. */
export function describeLowMemory(applied: LowMemory): { fields: Record<string, unknown>; message: string } {
  const fields = { heap_growing_percent: applied.heapGrowingPercent, max_semi_space_mb: applied.semiSpaceMb, applied_at: applied.appliedAt };
  if (applied.semiSpaceMb !== null) return { fields, message: 'low-memory mode: old-space growth and the young generation are capped' };
  return {
    fields,
    message: `low-memory mode: old-space growth is capped; the young generation is not (V8 sizes it at process start): start node with NODE_OPTIONS=--max-semi-space-size=${SEMI_SPACE_MB} to cap it too`,
  };
}
