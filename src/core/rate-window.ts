/**
 * Dispatch rate limit window, pure: a sliding log of the last starts. At most
 * `limit` starts fall in any `periodMs`-long interval; a start beyond that
 * waits until the oldest start in the window is `periodMs` old. The state is
 * plain JSON (start times, oldest first, never more than `limit`).
 */

export interface RatePolicy {
  /** Starts allowed per period. */
  limit: number;
  periodMs: number;
}

/** Start times (ms) still inside the period, oldest first. */
export type RateWindow = readonly number[];

/** The starts of `w` still inside the period as of `now`. */
export function rateCurrent(w: RateWindow, policy: RatePolicy, now: number): RateWindow {
  let drop = 0;
  while (drop < w.length && w[drop]! <= now - policy.periodMs) drop++;
  return drop === 0 ? w : w.slice(drop);
}

/**
 * How many more may start now.
 * @example
 * rateRoom([], { limit: 5, periodMs: 1000 }, Date.now()); // 5
 */
export function rateRoom(w: RateWindow, policy: RatePolicy, now: number): number {
  return Math.max(0, policy.limit - rateCurrent(w, policy, now).length);
}

/** When the next start is allowed (ms): `now` when there is room. */
export function rateNextAt(w: RateWindow, policy: RatePolicy, now: number): number {
  const current = rateCurrent(w, policy, now);
  if (current.length < policy.limit) return now;
  // The start that must leave the window before another may enter.
  return current[current.length - policy.limit]! + policy.periodMs;
}

export type RateTake = { ok: true; window: RateWindow } | { ok: false; window: RateWindow; retryAt: number };

/**
 * Take one start: allowed (the start is recorded) or not, with when to try again.
 *
 * @example
 * let w: RateWindow = [];
 * const t = rateTake(w, { limit: 1, periodMs: 100 }, 0); // { ok: true, window: [0] }
 * rateTake(t.window, { limit: 1, periodMs: 100 }, 50);   // { ok: false, retryAt: 100, ... }
 */
export function rateTake(w: RateWindow, policy: RatePolicy, now: number): RateTake {
  const current = rateCurrent(w, policy, now);
  if (current.length >= policy.limit) return { ok: false, window: current, retryAt: rateNextAt(current, policy, now) };
  return { ok: true, window: [...current, now] };
}
