/**
 * Milliseconds on the machine's monotonic clock (CLOCK_MONOTONIC, since boot),
 * sub-millisecond, the same clock in every process: the bench and the worker
 * processes all use it, so "sent" in one and "started" in another line up.
 * Not `performance.timeOrigin + performance.now()`: each process fixes its
 * timeOrigin from the wall clock once, at start, and on a busy machine that
 * reading was off by milliseconds (a latency run's p50 came out at −1.6 ms);
 * with ~1 ms resolution and NTP slewing besides.
 */
export function now() {
  return Number(process.hrtime.bigint()) / 1e6;
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
