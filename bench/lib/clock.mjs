/**
 * Wall-clock milliseconds with sub-millisecond resolution, comparable across
 * processes on one machine: performance.timeOrigin is the process's start on
 * the wall clock, performance.now() is monotonic since then. The bench and
 * the worker processes both use this, so "sent" and "started" line up.
 */
export function now() {
  return performance.timeOrigin + performance.now();
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
