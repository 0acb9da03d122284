import { describe, expect, it } from 'vitest';
import { rateCurrent, rateNextAt, rateRoom, rateTake, type RateWindow } from '../../src/core/rate-window.js';

const policy = { limit: 3, periodMs: 100 };

describe('rate window', () => {
  it('allows `limit` starts per period, then says when the next one may start', () => {
    let w: RateWindow = [];
    for (const t of [0, 10, 20]) {
      const taken = rateTake(w, policy, t);
      expect(taken.ok).toBe(true);
      w = taken.window;
    }
    expect(rateRoom(w, policy, 20)).toBe(0);
    expect(rateTake(w, policy, 50)).toEqual({ ok: false, window: [0, 10, 20], retryAt: 100 });
    // At 100 the start at 0 has left the window: one more may start, not two.
    expect(rateRoom(w, policy, 100)).toBe(1);
    const at100 = rateTake(w, policy, 100);
    expect(at100).toEqual({ ok: true, window: [10, 20, 100] });
    expect(rateNextAt(at100.window, policy, 100)).toBe(110);
  });

  it('never lets more than `limit` starts into any period-long interval', () => {
    let w: RateWindow = [];
    const starts: number[] = [];
    for (let t = 0; t < 1000; t += 7) {
      const taken = rateTake(w, policy, t);
      w = taken.window;
      if (taken.ok) starts.push(t);
      else expect(taken.retryAt).toBeGreaterThan(t);
    }
    for (let i = 0; i + policy.limit < starts.length; i++) expect(starts[i + policy.limit]! - starts[i]!).toBeGreaterThanOrEqual(policy.periodMs);
    expect(starts.length).toBeGreaterThanOrEqual(27); // ~3 per 100 ms over 1 s
  });

  it('forgets starts older than the period and is full room when empty', () => {
    expect(rateCurrent([0, 51, 120], policy, 150)).toEqual([51, 120]);
    expect(rateRoom([], policy, 0)).toBe(3);
    expect(rateNextAt([], policy, 42)).toBe(42);
    expect(rateRoom([0, 1, 2], { limit: 5, periodMs: 10 }, 5)).toBe(2);
  });
});
