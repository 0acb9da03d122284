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

/**
 * One failure: its time (ms), tagged with the node that saw it (`1733355600123@node-a`) so that two
 * nodes failing in the same millisecond count twice when their states merge. A bare number is a
 * failure recorded without a node (older stored state, a single process).
 */
export type FailureMark = number | string;

/** The time (ms) of a failure mark. */
export function failureTime(mark: FailureMark): number {
  return typeof mark === 'number' ? mark : Number(mark.slice(0, mark.indexOf('@')));
}

export interface QuarantineState {
  /** Failures within the window, oldest first. */
  failures: FailureMark[];
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
export function quarantineFailure(s: QuarantineState, policy: QuarantinePolicy, now: number, node?: string): QuarantineState {
  if (s.quarantinedAt !== null) return s;
  const failures = s.failures.filter((t) => failureTime(t) > now - policy.windowMs);
  failures.push(node ? `${now}@${node}` : now);
  return { failures, quarantinedAt: failures.length >= policy.failures ? now : null };
}

/** Failures still inside the window at `now`. */
export function recentFailures(s: QuarantineState, policy: QuarantinePolicy, now: number): number {
  return s.failures.filter((t) => failureTime(t) > now - policy.windowMs).length;
}

/**
 * One view of two nodes' states (a shared store): every failure either saw
 * counts once, a quarantine either recorded holds, and nothing from before
 * the last operator reset (`resetAt`) survives. Quarantines when the failures
 * together reach the policy, though neither node's alone did.
 *
 * @example
 * mergeQuarantine({ failures: [1, 2], quarantinedAt: null }, { failures: [2, 3], quarantinedAt: null }, { failures: 3, windowMs: 10 }, 4, 0);
 * // { failures: [1, 2, 3], quarantinedAt: 4 }
 */
export function mergeQuarantine(a: QuarantineState, b: QuarantineState, policy: QuarantinePolicy, now: number, resetAt: number): QuarantineState {
  const since = Math.max(resetAt, now - policy.windowMs);
  // Both may hold the same failure (each node reads the other's writes): count each time as often as either has it.
  const failures = maxMultiset(a.failures.filter((t) => failureTime(t) > since), b.failures.filter((t) => failureTime(t) > since));
  const held = [a.quarantinedAt, b.quarantinedAt].filter((t): t is number => t !== null && t > resetAt);
  const quarantinedAt = held.length > 0 ? Math.min(...held) : failures.length >= policy.failures ? now : null;
  return { failures, quarantinedAt };
}

function maxMultiset(a: readonly FailureMark[], b: readonly FailureMark[]): FailureMark[] {
  const count = (list: readonly FailureMark[]) => list.reduce((m, t) => m.set(t, (m.get(t) ?? 0) + 1), new Map<FailureMark, number>());
  const ca = count(a);
  const cb = count(b);
  const out: FailureMark[] = [];
  for (const t of new Set([...ca.keys(), ...cb.keys()])) for (let i = Math.max(ca.get(t) ?? 0, cb.get(t) ?? 0); i > 0; i--) out.push(t);
  return out.sort((x, y) => failureTime(x) - failureTime(y));
}
