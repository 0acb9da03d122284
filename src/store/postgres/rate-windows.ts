/**
 * Dispatch rate limits shared by every node on the store: one row per
 * handler and key holds the sliding window (core/rate-window.ts decides), and
 * taking a start locks that row, so nodes asking at once are served one after
 * the other and the limit holds cluster-wide. Only rate-limited handlers pay
 * for it, at most `limit` times per period per key.
 */
import type pg from 'pg';
import { rateTake, type RatePolicy } from '../../core/rate-window.js';
import type { RateStart } from '../engine.js';
import { inTransaction } from './connection.js';

// Creates the row or locks it, in one statement, and returns its window.
const LOCK_WINDOW = `
  INSERT INTO rate_windows (scope, starts, expires_at) VALUES ($1, '{}', 0)
  ON CONFLICT (scope) DO UPDATE SET scope = EXCLUDED.scope
  RETURNING starts`;
const SET_WINDOW = 'UPDATE rate_windows SET starts = $2, expires_at = $3 WHERE scope = $1';
export const PRUNE_RATE_WINDOWS = 'DELETE FROM rate_windows WHERE expires_at < $1';

export function takeRateStart(pool: pg.Pool, scope: string, policy: RatePolicy, now: number): Promise<RateStart> {
  return inTransaction(pool, async (client) => {
    const { rows } = await client.query<{ starts: string[] }>(LOCK_WINDOW, [scope]);
    // Sorted: nodes' clocks differ a little, so starts are not always appended in time order.
    const starts = (rows[0]?.starts ?? []).map(Number).sort((a, b) => a - b);
    const taken = rateTake(starts, policy, now);
    if (!taken.ok) return { ok: false, retryAt: taken.retryAt };
    await client.query(SET_WINDOW, [scope, taken.window, now + policy.periodMs]);
    return { ok: true };
  });
}
