/**
 * Quarantine window, pure: a handler whose jobs fail `failures` times within
 * `windowMs` is quarantined, and stays so until an operator resets it.
 * Successes do not clear the count: a handler that fails half the time still
 * burns through its jobs' attempts.
 */

export interface QuarantinePolicy {
  /** Failures within the window that quarantine the handler. */
  failures: number;
  windowMs: number;
}

export interface QuarantineState {
  /** Failure times (ms) within the window, oldest first. */
  failures: number[];
  /** When it was quarantined (ms), or null. */
  quarantinedAt: number | null;
}

/**
 * A handler with no recent failures.
 * @example
 * let q = clearQuarantine();
 */
export function clearQuarantine(): QuarantineState {
  return { failures: [], quarantinedAt: null };
}

/**
 * Record one failure at `now`.
 * @example
 * q = quarantineFailure(q, { failures: 5, windowMs: 300_000 }, Date.now());
 * q.quarantinedAt !== null; // after the fifth within 5 minutes
 */
export function quarantineFailure(s: QuarantineState, policy: QuarantinePolicy, now: number): QuarantineState {
  if (s.quarantinedAt !== null) return s;
  const failures = s.failures.filter((t) => t > now - policy.windowMs);
  failures.push(now);
  return { failures, quarantinedAt: failures.length >= policy.failures ? now : null };
}

/** Failures still inside the window at `now`. */
export function recentFailures(s: QuarantineState, policy: QuarantinePolicy, now: number): number {
  return s.failures.filter((t) => t > now - policy.windowMs).length;
}
