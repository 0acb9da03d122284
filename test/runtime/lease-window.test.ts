/**
 * The lease-ahead window in time (runtime/lease-window.ts): about
 * LEASE_AHEAD_MS of a lane's work at its measured completion rate, between
 * max(concurrency, 64) and LEASE_AHEAD_MAX jobs; the rate counts busy time only.
 * Its reach past the rate's size when leases come back to a lane run dry
 * (`nextReach`; the dispatcher's side: lease-reach.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { CompletionRate, LEASE_AHEAD_MAX, LEASE_AHEAD_MIN, LEASE_AHEAD_MS, leaseAheadWindow, nextReach } from '../../src/runtime/lease-window.js';

/** `n` completions `everyMs` apart from `from`; returns the time of the last. */
function finish(rate: CompletionRate, from: number, n: number, everyMs: number): number {
  let now = from;
  for (let i = 0; i < n; i++) rate.note((now = from + i * everyMs));
  return now;
}

describe('leaseAheadWindow', () => {
  it('holds about LEASE_AHEAD_MS of work in jobs', () => {
    expect(leaseAheadWindow(10, 12)).toBe(Math.round(12 * LEASE_AHEAD_MS));
    expect(leaseAheadWindow(10, 12)).toBeGreaterThan(LEASE_AHEAD_MIN);
  });

  it('never goes below max(concurrency, 64): no rate yet, or a slow lane', () => {
    expect(leaseAheadWindow(10, 0)).toBe(LEASE_AHEAD_MIN);
    expect(leaseAheadWindow(10, 0.5)).toBe(LEASE_AHEAD_MIN);
    expect(leaseAheadWindow(200, 0.5)).toBe(200);
  });

  it('never goes past LEASE_AHEAD_MAX however fast the lane, unless its concurrency is larger', () => {
    expect(leaseAheadWindow(10, 1_000)).toBe(LEASE_AHEAD_MAX);
    expect(leaseAheadWindow(10, Number.POSITIVE_INFINITY)).toBe(LEASE_AHEAD_MAX);
    expect(leaseAheadWindow(LEASE_AHEAD_MAX * 2, 1_000)).toBe(LEASE_AHEAD_MAX * 2);
  });
});

describe('CompletionRate', () => {
  it('is 0 until a span has been measured', () => {
    const rate = new CompletionRate();
    finish(rate, 1_000, 100, 0.1); // 10 ms: shorter than a span
    expect(rate.perMs).toBeCloseTo(0, 9); // -0 (a double from the start, see CompletionRate)
  });

  it('measures completions per ms while the lane is busy', () => {
    const rate = new CompletionRate();
    finish(rate, 1_000, 5_000, 0.1); // 10 a ms for 500 ms
    expect(rate.perMs).toBeCloseTo(10, 1);
  });

  it('does not count an idle pause as slowness', () => {
    const rate = new CompletionRate();
    const end = finish(rate, 1_000, 5_000, 0.1);
    // Ten seconds idle, then busy again at the same speed: no span takes in the pause.
    finish(rate, end + 10_000, 2_000, 0.1);
    expect(rate.perMs).toBeCloseTo(10, 1);
  });

  it('follows a lane that slows down within a few spans', () => {
    const rate = new CompletionRate();
    const end = finish(rate, 1_000, 5_000, 0.1);
    finish(rate, end + 1, 500, 1); // 1 a ms for 500 ms
    expect(rate.perMs).toBeCloseTo(1, 1);
    expect(leaseAheadWindow(10, rate.perMs)).toBe(LEASE_AHEAD_MIN);
  });
});

describe('nextReach', () => {
  const trip = { window: 64, ran: 32, dry: true, filled: true };

  it('doubles the window after a full lease came back to a dry lane, up to LEASE_AHEAD_MAX', () => {
    expect(nextReach(0, trip)).toBe(128);
    expect(nextReach(128, { ...trip, window: 128 })).toBe(256);
    expect(nextReach(512, { ...trip, window: LEASE_AHEAD_MAX })).toBe(LEASE_AHEAD_MAX);
    expect(leaseAheadWindow(10, 0, nextReach(0, trip))).toBe(128);
  });

  it('does not grow for a short lease (nothing more due) or a lane that never ran dry', () => {
    expect(nextReach(0, { ...trip, filled: false })).toBe(0);
    expect(nextReach(0, { ...trip, dry: false })).toBe(0);
  });

  it('once the lane stops running dry, follows four round trips of its work: less as it slows', () => {
    expect(nextReach(256, { window: 256, ran: 50, dry: false, filled: true })).toBe(200);
    expect(nextReach(200, { window: 200, ran: 5, dry: false, filled: true })).toBe(20);
    // Below the floor the floor holds; the rate's size wins when it is larger.
    expect(leaseAheadWindow(10, 0, 20)).toBe(LEASE_AHEAD_MIN);
    expect(leaseAheadWindow(10, 20, 200)).toBe(20 * LEASE_AHEAD_MS);
  });
});
