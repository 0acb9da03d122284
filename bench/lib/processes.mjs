/**
 * Child processes and temp dirs the bench creates, tracked by PID and path so
 * that every exit path (success, a thrown error, Ctrl-C) removes all of them.
 *
 * spawnTracked() starts a child and splits its stdout into lines; waitForLine()
 * resolves on the first line (already seen or future) that matches. cleanupAll()
 * is idempotent and synchronous, so it is safe in process.on('exit').
 */
import { spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { now } from './clock.mjs';

const children = new Map(); // pid -> tracked child
const tempDirs = new Set();

export function makeTempDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir) {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/**
 * Start `command args` with stdout split into lines.
 * Returns { pid, child, lines, stderr, exited, waitForLine(match, timeoutMs, what), kill(signal), stop(graceMs) }.
 */
export function spawnTracked(command, args, { env, cwd, label = command } = {}) {
  const child = spawn(command, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`could not start ${label}`);
  const tracked = { pid: child.pid, child, label, lines: [], stderr: [], spawnedAt: now(), exitInfo: null };
  children.set(child.pid, tracked);

  const waiters = new Set();
  tracked.exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      children.delete(tracked.pid);
      tracked.exitInfo = { code, signal };
      for (const w of waiters) w.onExit(tracked.exitInfo);
      resolve(tracked.exitInfo);
    });
  });

  let buffered = '';
  // BENCH_STDOUT_DIR: also copy each child's stdout to <dir>/<pid>.out (e.g. a worker's --trace-opt output).
  const copy = process.env.BENCH_STDOUT_DIR ? createWriteStream(join(process.env.BENCH_STDOUT_DIR, `${child.pid}.out`)) : null;
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk) => {
    copy?.write(chunk);
    buffered += chunk;
    let newline;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      const at = now();
      tracked.lines.push(line);
      for (const w of waiters) w.onLine(line, at);
    }
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    tracked.stderr.push(chunk);
    if (tracked.stderr.length > 200) tracked.stderr.shift();
  });

  /** Resolve { line, match, at } for the first stdout line `match` (a RegExp or predicate) accepts. */
  tracked.waitForLine = (match, timeoutMs, what = String(match)) => {
    const test = typeof match === 'function' ? match : (line) => match.exec(line);
    for (const line of tracked.lines) {
      const m = test(line);
      if (m) return Promise.resolve({ line, match: m, at: now() });
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        onLine(line, at) {
          const m = test(line);
          if (!m) return;
          done();
          resolve({ line, match: m, at });
        },
        onExit(info) {
          done();
          reject(new Error(`${label} (pid ${tracked.pid}) exited (code ${info.code}, signal ${info.signal}) while waiting for ${what}; stderr: ${tracked.stderr.join('').slice(-2000)}`));
        },
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${label} (pid ${tracked.pid}) did not print ${what} within ${timeoutMs} ms; stderr: ${tracked.stderr.join('').slice(-2000)}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        waiters.delete(waiter);
      };
      if (tracked.exitInfo) waiter.onExit(tracked.exitInfo);
      else waiters.add(waiter);
    });
  };

  tracked.kill = (signal = 'SIGKILL') => {
    if (tracked.exitInfo) return;
    try {
      process.kill(tracked.pid, signal);
    } catch {
      // Already gone.
    }
  };

  /** SIGTERM, then SIGKILL after graceMs; resolves once the process has exited. */
  tracked.stop = async (graceMs = 5000) => {
    if (tracked.exitInfo) return tracked.exitInfo;
    tracked.kill('SIGTERM');
    const timer = setTimeout(() => tracked.kill('SIGKILL'), graceMs);
    try {
      return await tracked.exited;
    } finally {
      clearTimeout(timer);
    }
  };

  return tracked;
}

/** Kill every live child (by PID) and remove every temp dir. Synchronous and idempotent. */
export function cleanupAll() {
  for (const [pid] of children) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  children.clear();
  for (const dir of tempDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // Best effort on the way out.
    }
  }
  tempDirs.clear();
}

/** Wait (bounded) for every live child to exit after it was killed. */
export async function killAllAndWait(timeoutMs = 5000) {
  const live = [...children.values()];
  for (const c of live) c.kill('SIGKILL');
  await Promise.race([Promise.all(live.map((c) => c.exited)), new Promise((r) => setTimeout(r, timeoutMs))]);
}

export function liveChildCount() {
  return children.size;
}

/** Peak and current resident set size of a live process, in MiB (Linux /proc). */
export function memoryOf(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { peakRssMiB: kb('VmHWM') / 1024, rssMiB: kb('VmRSS') / 1024 };
  } catch {
    return { peakRssMiB: NaN, rssMiB: NaN };
  }
}

/** User + system CPU seconds a live process has used so far (Linux /proc). */
export function cpuSecondsOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command (which may contain spaces) start at the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15)
    return ticks / 100; // USER_HZ is 100 on Linux
  } catch {
    return NaN;
  }
}
