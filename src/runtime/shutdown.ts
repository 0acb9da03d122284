/**
 * The shutdown deadline (docs/operations.md "Shutdown"). `shutdown.graceMs`
 * is how long running jobs get to finish; the whole shutdown, whatever its
 * handlers, store or log reader do, ends within the grace period plus
 * `SHUTDOWN_ALLOWANCE_MS`. The allowance is spent, at most, as below; the
 * process exits when it is used up, finished or not.
 */
import { LOG_FLUSH_MS } from '../obs/logger.js';

/** After the grace period: aborted handlers settle through their signal. */
export const ABORT_SETTLE_MS = 1_000;
/** Then: threads of handlers that ignored their signal are terminated, leases of inline ones released, outcomes in flight written. */
export const RELEASE_MS = 1_000;
/** Then: background tasks, servers and the store are closed (each bounded; what remains is left to the exit). */
export const CLOSE_MS = 2_000;
/** Time past `shutdown.graceMs` a shutdown may take, the final log flush included. */
export const SHUTDOWN_ALLOWANCE_MS = ABORT_SETTLE_MS + RELEASE_MS + CLOSE_MS + LOG_FLUSH_MS;

/** Resolve true if `promise` settles within `ms`, false otherwise (a rejection counts as settled). */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, ms));
  });
  try {
    return await Promise.race([promise.then(() => true as const, () => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
