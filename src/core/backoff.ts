/**
 * Retry timing. Exponential backoff with jitter as described in the AWS
 * Architecture Blog post "Exponential Backoff And Jitter": jitter spreads the
 * retries of jobs that failed together (an outage) so they do not come back
 * as one thundering herd. Randomness is injected so tests are deterministic.
 */
import type { BackoffPolicy } from './handler.js';

/**
 * Delay in milliseconds before retrying after failed attempt number `attempt`
 * (1 for the first failure). The base delay is `initialMs * factor^(attempt-1)`
 * capped at `maxMs`; then
 * - `full`: uniform in [0, base]
 * - `equal`: base/2 + uniform in [0, base/2]
 * - `none`: base.
 *
 * `random` must return a number in [0, 1) like `Math.random`; values outside
 * are clamped. The result is a whole number of milliseconds, never above `maxMs`.
 *
 * @example
 * const policy = { initialMs: 1000, maxMs: 60_000, factor: 2, jitter: 'none' } as const;
 * backoffDelay(policy, 1, Math.random); // 1000
 * backoffDelay(policy, 3, Math.random); // 4000
 * backoffDelay(policy, 30, Math.random); // 60000 (capped)
 */
export function backoffDelay(policy: Required<BackoffPolicy>, attempt: number, random: () => number): number {
  const n = Number.isFinite(attempt) ? Math.max(1, Math.floor(attempt)) : 1;
  const cap = Math.max(0, policy.maxMs);
  // factor^(n-1) overflows to Infinity for large n; Math.min then yields the cap.
  const base = Math.min(cap, Math.max(0, policy.initialMs) * Math.pow(policy.factor, n - 1));
  if (!Number.isFinite(base)) return cap;
  switch (policy.jitter) {
    case 'none':
      return Math.floor(base);
    case 'equal':
      return Math.floor(base / 2 + unit(random) * (base / 2));
    case 'full':
      return Math.floor(unit(random) * base);
  }
}

/** What to do with a job whose attempt just failed. */
export type FailureDecision = { retryAt: number } | { retryAt: null; deadReason: 'exhausted' | 'non_retryable' | 'poison' };

export interface FailureInput {
  /** The attempt that failed, 1-based. */
  attempt: number;
  maxAttempts: number;
  /** The handler threw `NonRetryableError`: dead at once, whatever attempts remain. */
  nonRetryable: boolean;
  now: number;
  backoff: Required<BackoffPolicy>;
  random: () => number;
  /**
   * The attempt's worker was killed under it (its thread ran out of memory or
   * died), as opposed to the handler failing. Such attempts count toward
   * `poisonAfter` like crashes and lease expiries, so one payload that kills
   * every worker it lands on is stopped after a few workers, not `maxAttempts`.
   */
  killed?: boolean;
  /** Crashes recorded on the job before this attempt (its `crashes` column). */
  crashesBefore?: number;
  /** A job whose attempts ended by crash, lease expiry or kill this many times is dead with reason `poison`. */
  poisonAfter?: number;
}

/**
 * Decide between a retry (and when) and death (and why) after a failed attempt.
 * The reasons are checked from the most to the least specific about the cause:
 * non-retryable (the handler said so), then poison (a killed attempt that
 * reaches `poisonAfter` crashes), then exhausted (out of attempts).
 *
 * @example
 * decideFailure({ attempt: 1, maxAttempts: 5, nonRetryable: false, now: 0, backoff, random: () => 0.5 });
 * // { retryAt: 500 } with full jitter and initialMs 1000
 * decideFailure({ attempt: 5, maxAttempts: 5, nonRetryable: false, now: 0, backoff, random: Math.random });
 * // { retryAt: null, deadReason: 'exhausted' }
 * decideFailure({ attempt: 2, maxAttempts: 5, nonRetryable: false, now: 0, backoff, random: Math.random, killed: true, crashesBefore: 1, poisonAfter: 2 });
 * // { retryAt: null, deadReason: 'poison' }
 */
export function decideFailure(input: FailureInput): FailureDecision {
  if (input.nonRetryable) return { retryAt: null, deadReason: 'non_retryable' };
  if (input.killed && input.poisonAfter !== undefined && (input.crashesBefore ?? 0) + 1 >= input.poisonAfter) {
    return { retryAt: null, deadReason: 'poison' };
  }
  if (input.attempt >= input.maxAttempts) return { retryAt: null, deadReason: 'exhausted' };
  return { retryAt: input.now + backoffDelay(input.backoff, input.attempt, input.random) };
}

/** Clamp a random draw into [0, 1]; a NaN from a bad generator counts as 0. */
function unit(random: () => number): number {
  const r = random();
  if (!(r > 0)) return 0;
  return r > 1 ? 1 : r;
}
