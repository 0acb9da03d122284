/**
 * The bench shares its machine (2 cores, other engineers' test runs), so each
 * run records how busy the machine was with work that was NOT the bench, and
 * the runner can wait for a quiet moment before a run. Linux /proc only; on
 * other systems the numbers are NaN and waiting is skipped.
 *
 *  - machine busy: non-idle jiffies of all CPUs (/proc/stat)
 *  - bench busy: this process plus its reaped children (/proc/self/stat utime,
 *    stime, cutime, cstime); workers are reaped inside each run, so their CPU
 *    lands here
 *  - other = machine − bench, in cores (1.0 = one core fully used by others)
 */
import { readFileSync } from 'node:fs';
import { sleep } from './clock.mjs';

const HZ = 100; // USER_HZ on Linux

function machineJiffies() {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = cpu;
  return { busy: user + nice + system + irq + softirq + steal, idle: idle + iowait };
}

function benchJiffies() {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  return f[11] + f[12] + f[13] + f[14]; // utime stime cutime cstime
}

/** Start measuring; call the returned function to get average core usage since then. */
export function measureLoad() {
  let start;
  try {
    start = { t: performance.now(), machine: machineJiffies(), bench: benchJiffies() };
  } catch {
    return () => ({ seconds: NaN, machineCores: NaN, benchCores: NaN, otherCores: NaN });
  }
  return () => {
    const seconds = (performance.now() - start.t) / 1000;
    const machine = (machineJiffies().busy - start.machine.busy) / HZ / seconds;
    const bench = (benchJiffies() - start.bench) / HZ / seconds;
    const round = (v) => Math.round(v * 100) / 100;
    return { seconds: round(seconds), machineCores: round(machine), benchCores: round(bench), otherCores: round(Math.max(0, machine - bench)) };
  };
}

/**
 * Wait until others use at most `maxOtherCores` over a `windowMs` window, for
 * up to `timeoutMs`. Resolves { waitedS, otherCores, quiet }.
 */
export async function waitForQuiet({ maxOtherCores = 0.25, windowMs = 1000, timeoutMs = 60_000 } = {}) {
  const started = performance.now();
  let last = NaN;
  do {
    const stop = measureLoad();
    await sleep(windowMs);
    last = stop().otherCores;
    if (!(last > maxOtherCores)) return { waitedS: Math.round(performance.now() - started) / 1000, otherCores: last, quiet: true };
  } while (performance.now() - started < timeoutMs);
  return { waitedS: Math.round(performance.now() - started) / 1000, otherCores: last, quiet: false };
}
