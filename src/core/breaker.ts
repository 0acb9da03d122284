/**
 * Circuit breaker state machine, pure: closed → open after `failures`
 * consecutive failures, or when the failure ratio over the last `window`
 * results reaches `ratio` (once at least `minRequests` are in) → half-open
 * after `coolDownMs`, admitting a single probe → closed when the probe
 * succeeds, open again when it fails. Open means *wait*: the caller stops
 * dispatching, it does not fail jobs. The state is plain JSON so it can be
 * stored and shared by nodes.
 */

export type BreakerStateName = 'closed' | 'open' | 'half_open';

export interface BreakerPolicy {
  /** Consecutive failures that open the breaker. */
  failures: number;
  /** Failure ratio (0–1] over the last `window` results that opens it. */
  ratio: number;
  /** Results needed in the window before the ratio counts. */
  minRequests: number;
  /** Results kept for the ratio. */
  window: number;
  /** Time open before a probe is admitted. */
  coolDownMs: number;
}

export interface BreakerState {
  state: BreakerStateName;
  consecutiveFailures: number;
  /** Last results, oldest first: 1 = failure, 0 = success. */
  recent: Array<0 | 1>;
  /** When it last opened (ms), or null. */
  openedAt: number | null;
  /** When the half-open probe started (ms), or null when none is in flight. */
  probeStartedAt: number | null;
  /** When it last closed after being open (probe succeeded, operator reset), or null. Absent in states stored by older versions. */
  closedAt?: number | null;
}

/** What may run now: every job, a single probe, or nothing. */
export type Admission = 'all' | 'probe' | 'none';

/**
 * A fresh, closed breaker.
 * @example
 * let s = closedBreaker();
 */
export function closedBreaker(): BreakerState {
  return { state: 'closed', consecutiveFailures: 0, recent: [], openedAt: null, probeStartedAt: null };
}

/** The state as of `now`: an open breaker whose cool-down has passed is half-open. */
export function breakerAt(s: BreakerState, policy: BreakerPolicy, now: number): BreakerState {
  if (s.state === 'open' && s.openedAt !== null && now >= s.openedAt + policy.coolDownMs) {
    return { ...s, state: 'half_open', probeStartedAt: null };
  }
  return s;
}

/**
 * Whether jobs may start now. A probe in flight for longer than
 * `probeStaleMs` (its node died) no longer blocks a new one.
 *
 * @example
 * breakerAdmission(closedBreaker(), policy, Date.now(), 60_000); // 'all'
 */
export function breakerAdmission(s: BreakerState, policy: BreakerPolicy, now: number, probeStaleMs: number): Admission {
  const at = breakerAt(s, policy, now);
  if (at.state === 'closed') return 'all';
  if (at.state === 'open') return 'none';
  return at.probeStartedAt === null || now - at.probeStartedAt > probeStaleMs ? 'probe' : 'none';
}

/** A job started; when half-open it is the probe. */
export function breakerStarted(s: BreakerState, policy: BreakerPolicy, now: number): BreakerState {
  const at = breakerAt(s, policy, now);
  return at.state === 'half_open' ? { ...at, probeStartedAt: now } : s;
}

/** Does `s` open now, given these counters? */
function trips(consecutive: number, recent: ReadonlyArray<0 | 1>, policy: BreakerPolicy): boolean {
  if (consecutive >= policy.failures) return true;
  if (recent.length < policy.minRequests) return false;
  let failed = 0;
  for (const r of recent) failed += r;
  return failed / recent.length >= policy.ratio;
}

/**
 * Record one result. Results arriving while open (jobs started before it
 * opened) change nothing. An unchanged state is returned as the same object.
 *
 * @example
 * s = breakerResult(s, policy, Date.now(), false); // a failure
 */
export function breakerResult(s: BreakerState, policy: BreakerPolicy, now: number, ok: boolean): BreakerState {
  const at = breakerAt(s, policy, now);
  if (at.state === 'open') return at;
  if (at.state === 'half_open') {
    return ok ? { ...closedBreaker(), closedAt: now } : { ...at, state: 'open', openedAt: now, probeStartedAt: null };
  }
  // The steady state of a healthy handler (a full window of successes) is
  // returned as is: callers test identity to skip storing an unchanged state.
  if (ok && at.consecutiveFailures === 0 && at.recent.length >= policy.window && !at.recent.includes(1)) return at;
  const recent = [...at.recent, ok ? 0 : 1] as Array<0 | 1>;
  if (recent.length > policy.window) recent.splice(0, recent.length - policy.window);
  const consecutiveFailures = ok ? 0 : at.consecutiveFailures + 1;
  if (trips(consecutiveFailures, recent, policy)) {
    return { state: 'open', consecutiveFailures, recent: [], openedAt: now, probeStartedAt: null };
  }
  return { ...at, consecutiveFailures, recent };
}

/** When an open breaker admits its probe (ms), or null when not open. */
export function breakerRetryAt(s: BreakerState, policy: BreakerPolicy): number | null {
  return s.state === 'open' && s.openedAt !== null ? s.openedAt + policy.coolDownMs : null;
}

/**
 * One view of two nodes' breakers (a shared store): the one that changed
 * state (opened or closed) last wins, so a breaker any node opened holds every
 * node back, and a probe that succeeded anywhere (or a reset) reopens the
 * flow everywhere. Between transitions each node keeps its own counters, and
 * a probe started by either blocks a second one.
 *
 * @example
 * mergeBreaker(closedBreaker(), { ...closedBreaker(), state: 'open', openedAt: 5 }); // the open one
 */
export function mergeBreaker(local: BreakerState, other: BreakerState): BreakerState {
  const changed = (s: BreakerState) => Math.max(s.openedAt ?? -Infinity, s.closedAt ?? -Infinity);
  if (changed(other) > changed(local)) return other;
  if (changed(other) < changed(local) || other.probeStartedAt === null) return local;
  // Same opening, and the other node started a probe later (it is half-open there).
  return local.probeStartedAt !== null && local.probeStartedAt >= other.probeStartedAt ? local : other;
}
