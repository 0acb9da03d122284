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
 *  - servers busy: the database servers the systems under test use (PostgreSQL,
 *    Redis). Their work is part of what is measured, not noise: a run that
 *    makes PostgreSQL use a core must not be set aside for it. Each server
 *    process counts with its reaped children (PostgreSQL backends that exit
 *    land in the postmaster's cutime/cstime), so the sum only grows.
 *  - other = machine − bench − servers, in cores (1.0 = one core fully used by others)
 */
import { readdirSync, readFileSync } from 'node:fs';
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

const SERVERS = new Set(['postgres', 'redis-server']);

function processJiffies(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  return f[11] + f[12] + f[13] + f[14];
}

function serverJiffies() {
  let total = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (SERVERS.has(readFileSync(`/proc/${pid}/comm`, 'utf8').trim())) total += processJiffies(pid);
    } catch {
      // Gone between the listing and the read.
    }
  }
  return total;
}

/** Start measuring; call the returned function to get average core usage since then. */
export function measureLoad() {
  let start;
  try {
    start = { t: performance.now(), machine: machineJiffies(), bench: benchJiffies(), servers: serverJiffies() };
  } catch {
    return () => ({ seconds: NaN, machineCores: NaN, benchCores: NaN, serverCores: NaN, otherCores: NaN });
  }
  return () => {
    const seconds = (performance.now() - start.t) / 1000;
    const machine = (machineJiffies().busy - start.machine.busy) / HZ / seconds;
    const bench = (benchJiffies() - start.bench) / HZ / seconds;
    const servers = (serverJiffies() - start.servers) / HZ / seconds;
    const round = (v) => Math.round(v * 100) / 100;
    return {
      seconds: round(seconds),
      machineCores: round(machine),
      benchCores: round(bench),
      serverCores: round(servers),
      otherCores: round(Math.max(0, machine - bench - servers)),
    };
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
