/**
 * Dispatch rate-limit windows kept in the store, so every node sharing it
 * counts against one window. Optional: engines declaring
 * `capabilities.sharedRateLimits` play it; elsewhere the runtime keeps each
 * window in memory.
 */
import type { RatePolicy } from '../../core/rate-window.js';
import type { StoreRole } from './capabilities.js';

/** A start under a shared rate limit: taken, or refused until `retryAt`. */
export type RateStart = { ok: true } | { ok: false; retryAt: number };

export interface SharedRateLimits extends StoreRole {
  /** Take one start under the limit `policy` for `scope` (handler and key). */
  takeRateStart(scope: string, policy: RatePolicy, now: number): Promise<RateStart>;
}

/**
 * The store as `SharedRateLimits` when it declares the capability, else null.
 *
 * @example
 * const shared = sharedRateLimitsOf(store);
 * if (shared) await shared.takeRateStart(scope, policy, now);
 */
export function sharedRateLimitsOf(store: StoreRole & Partial<Pick<SharedRateLimits, 'takeRateStart'>>): SharedRateLimits | null {
  return store.capabilities.sharedRateLimits && typeof store.takeRateStart === 'function' ? (store as SharedRateLimits) : null;
}
