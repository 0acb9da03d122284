/**
 * The job state machine. Every state change a store engine makes must be one
 * of these edges; engines and the API check with `canTransition` so an
 * operator action or a late worker cannot, say, resurrect a succeeded job.
 */
import { DroverError } from './errors.js';
import { TERMINAL_STATES, type JobState } from './types.js';

/**
 * Allowed transitions, by source state.
 *
 * - `scheduled → queued` when runAt arrives; `→ cancelled` by an operator.
 * - `queued → running` when leased; `→ cancelled`; `→ scheduled` when dispatch
 *   is deferred (open circuit breaker, rate limit): waiting, not failing.
 * - `running → succeeded`; `→ queued` (lease expired, released at shutdown);
 *   `→ scheduled` (retry after backoff); `→ dead` (exhausted, non-retryable,
 *   poison); `→ cancelled`; `→ suspended` (a durable step waits).
 * - `suspended → queued` when its wait resolves (event, resume, timeout, the
 *   sleep's end); `→ cancelled` by an operator.
 * - `dead → queued` and `cancelled → queued`: an operator's retry.
 * - `succeeded` is final.
 *
 * @example
 * TRANSITIONS.running.includes('succeeded'); // true
 */
export const TRANSITIONS: Record<JobState, readonly JobState[]> = {
  scheduled: ['queued', 'cancelled'],
  queued: ['running', 'cancelled', 'scheduled'],
  running: ['succeeded', 'queued', 'scheduled', 'dead', 'cancelled', 'suspended'],
  suspended: ['queued', 'cancelled'],
  succeeded: [],
  dead: ['queued'],
  cancelled: ['queued'],
};

/**
 * Whether a job may move from `from` to `to`. Staying in the same state is not a transition.
 *
 * @example
 * canTransition('dead', 'queued'); // true (operator retry)
 * canTransition('succeeded', 'queued'); // false
 */
export function canTransition(from: JobState, to: JobState): boolean {
  return TRANSITIONS[from]?.includes(to) ?? false;
}

/**
 * Throw `DroverError('invalid_state')` unless `from → to` is allowed.
 *
 * @example
 * assertTransition('cancelled', 'queued'); // ok
 * assertTransition('succeeded', 'cancelled'); // throws: job is succeeded; it can move to: (nothing)
 */
export function assertTransition(from: JobState, to: JobState): void {
  if (canTransition(from, to)) return;
  const allowed = TRANSITIONS[from]?.join(', ') || '(nothing: it is final)';
  throw new DroverError('invalid_state', `job is ${from} and cannot become ${to}; from ${from} it can become: ${allowed}`, {
    extensions: { from, to },
  });
}

/**
 * True for states no worker will move on its own: `succeeded`, `dead`,
 * `cancelled`. (`dead` and `cancelled` can still be retried by an operator.)
 *
 * @example
 * isTerminal('dead'); // true
 * isTerminal('scheduled'); // false
 */
export function isTerminal(state: JobState): boolean {
  return TERMINAL_STATES.includes(state);
}
