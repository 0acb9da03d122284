import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoffDelay, decideFailure } from '../../src/core/backoff.js';
import type { BackoffPolicy } from '../../src/core/handler.js';

const policy = (over: Partial<BackoffPolicy> = {}): Required<BackoffPolicy> => ({
  initialMs: 1000,
  maxMs: 3_600_000,
  factor: 2,
  jitter: 'none',
  ...over,
});
const never = () => {
  throw new Error('random must not be called');
};

describe('backoffDelay', () => {
  it('grows exponentially from initialMs with no jitter', () => {
    const p = policy();
    expect([1, 2, 3, 4, 5].map((a) => backoffDelay(p, a, never))).toEqual([1000, 2000, 4000, 8000, 16000]);
  });

  it('caps at maxMs', () => {
    const p = policy({ maxMs: 5000 });
    expect([1, 2, 3, 4, 10].map((a) => backoffDelay(p, a, never))).toEqual([1000, 2000, 4000, 5000, 5000]);
  });

  it('does not overflow for huge attempt numbers', () => {
    expect(backoffDelay(policy(), 10_000, never)).toBe(3_600_000);
    expect(backoffDelay(policy({ jitter: 'full' }), 10_000, () => 0.5)).toBe(1_800_000);
  });

  it('honours other factors, including 1 (constant)', () => {
    expect(backoffDelay(policy({ factor: 3 }), 3, never)).toBe(9000);
    expect(backoffDelay(policy({ factor: 1 }), 7, never)).toBe(1000);
    expect(backoffDelay(policy({ factor: 1.5 }), 3, never)).toBe(2250);
  });

  it('full jitter: uniform in [0, base]', () => {
    const p = policy({ jitter: 'full' });
    expect(backoffDelay(p, 3, () => 0)).toBe(0);
    expect(backoffDelay(p, 3, () => 0.5)).toBe(2000);
    expect(backoffDelay(p, 3, () => 0.9999)).toBe(3999);
  });

  it('equal jitter: base/2 + uniform in [0, base/2]', () => {
    const p = policy({ jitter: 'equal' });
    expect(backoffDelay(p, 3, () => 0)).toBe(2000);
    expect(backoffDelay(p, 3, () => 0.5)).toBe(3000);
    expect(backoffDelay(p, 3, () => 0.9999)).toBe(3999);
  });

  it('treats attempt < 1 or non-integer as the first attempt / floor', () => {
    expect(backoffDelay(policy(), 0, never)).toBe(1000);
    expect(backoffDelay(policy(), -3, never)).toBe(1000);
    expect(backoffDelay(policy(), 2.7, never)).toBe(2000);
    expect(backoffDelay(policy(), NaN, never)).toBe(1000);
  });

  it('clamps a misbehaving random source', () => {
    const p = policy({ jitter: 'full' });
    expect(backoffDelay(p, 1, () => -1)).toBe(0);
    expect(backoffDelay(p, 1, () => 7)).toBe(1000);
    expect(backoffDelay(p, 1, () => NaN)).toBe(0);
  });

  it('initialMs 0 means retry at once', () => {
    expect(backoffDelay(policy({ initialMs: 0, jitter: 'full' }), 5, () => 0.5)).toBe(0);
  });

  it('is always a whole number in [0, maxMs], and full ≤ equal-range ≤ base', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 100_000 }),
        fc.integer({ min: 0, max: 10_000_000 }),
        fc.double({ min: 1, max: 10, noNaN: true }),
        fc.constantFrom('full', 'equal', 'none'),
        fc.integer({ min: 1, max: 200 }),
        fc.double({ min: 0, max: 0.999999, noNaN: true }),
        (initialMs, maxMs, factor, jitter, attempt, r) => {
          const p = { initialMs, maxMs, factor, jitter } as Required<BackoffPolicy>;
          const d = backoffDelay(p, attempt, () => r);
          const base = Math.min(maxMs, initialMs * factor ** (attempt - 1));
          const low = jitter === 'full' ? 0 : jitter === 'equal' ? Math.floor(base / 2) : Math.floor(base);
          return Number.isInteger(d) && d >= low && d <= base && d <= maxMs;
        },
      ),
    );
  });
});

describe('decideFailure', () => {
  const base = { maxAttempts: 3, nonRetryable: false, now: 1_000_000, backoff: policy(), random: () => 0.5 };

  it('retries with the backoff delay while attempts remain', () => {
    expect(decideFailure({ ...base, attempt: 1 })).toEqual({ retryAt: 1_001_000 });
    expect(decideFailure({ ...base, attempt: 2 })).toEqual({ retryAt: 1_002_000 });
  });

  it('uses the injected random source for jitter', () => {
    const full = { ...base, backoff: policy({ jitter: 'full' }) };
    expect(decideFailure({ ...full, attempt: 2, random: () => 0.25 })).toEqual({ retryAt: 1_000_500 });
  });

  it('is dead with reason exhausted after the last attempt', () => {
    expect(decideFailure({ ...base, attempt: 3 })).toEqual({ retryAt: null, deadReason: 'exhausted' });
    expect(decideFailure({ ...base, attempt: 4 })).toEqual({ retryAt: null, deadReason: 'exhausted' });
    expect(decideFailure({ ...base, attempt: 1, maxAttempts: 1 })).toEqual({ retryAt: null, deadReason: 'exhausted' });
  });

  it('is dead with reason non_retryable at once, even on the last attempt', () => {
    expect(decideFailure({ ...base, attempt: 1, nonRetryable: true })).toEqual({ retryAt: null, deadReason: 'non_retryable' });
    expect(decideFailure({ ...base, attempt: 3, nonRetryable: true })).toEqual({ retryAt: null, deadReason: 'non_retryable' });
  });

  describe('killed attempts (memory limit, thread crash) count toward poisonAfter', () => {
    const killed = { ...base, maxAttempts: 5, killed: true, poisonAfter: 2 };

    it('retries a killed attempt while crashes stay below poisonAfter', () => {
      expect(decideFailure({ ...killed, attempt: 1, crashesBefore: 0 })).toEqual({ retryAt: 1_001_000 });
    });

    it('is dead with reason poison when this kill reaches poisonAfter, attempts left or not', () => {
      expect(decideFailure({ ...killed, attempt: 2, crashesBefore: 1 })).toEqual({ retryAt: null, deadReason: 'poison' });
      // Earlier crashes (lease expiries) count too; the attempt number does not matter.
      expect(decideFailure({ ...killed, attempt: 1, crashesBefore: 4 })).toEqual({ retryAt: null, deadReason: 'poison' });
      expect(decideFailure({ ...killed, attempt: 1, crashesBefore: 0, poisonAfter: 1 })).toEqual({ retryAt: null, deadReason: 'poison' });
    });

    it('orders the reasons: non_retryable, then poison, then exhausted', () => {
      expect(decideFailure({ ...killed, attempt: 2, crashesBefore: 1, nonRetryable: true })).toEqual({ retryAt: null, deadReason: 'non_retryable' });
      expect(decideFailure({ ...killed, attempt: 5, crashesBefore: 1 })).toEqual({ retryAt: null, deadReason: 'poison' });
      expect(decideFailure({ ...killed, attempt: 5, crashesBefore: 0 })).toEqual({ retryAt: null, deadReason: 'exhausted' });
    });

    it('never poisons an ordinary failure, however many crashes the job had', () => {
      expect(decideFailure({ ...killed, killed: false, attempt: 1, crashesBefore: 9 })).toEqual({ retryAt: 1_001_000 });
      // Without a poisonAfter there is no poison decision to make.
      expect(decideFailure({ ...base, attempt: 1, killed: true, crashesBefore: 9 })).toEqual({ retryAt: 1_001_000 });
    });
  });
});
