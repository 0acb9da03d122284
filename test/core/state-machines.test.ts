import { describe, expect, it } from 'vitest';
import { breakerAdmission, breakerAt, breakerResult, breakerStarted, closedBreaker, mergeBreaker, type BreakerPolicy } from '../../src/core/breaker.js';
import { clearQuarantine, mergeQuarantine, quarantineFailure, recentFailures } from '../../src/core/quarantine.js';

const policy: BreakerPolicy = { failures: 3, ratio: 0.5, minRequests: 4, window: 6, coolDownMs: 1000 };

describe('circuit breaker', () => {
  it('opens after consecutive failures, waits the cool-down, admits one probe, closes on its success', () => {
    let s = closedBreaker();
    s = breakerResult(s, policy, 0, false);
    s = breakerResult(s, policy, 1, false);
    expect(breakerAdmission(s, policy, 2, 10_000)).toBe('all');
    s = breakerResult(s, policy, 2, false);
    expect(s.state).toBe('open');
    expect(breakerAdmission(s, policy, 500, 10_000)).toBe('none');
    expect(breakerAt(s, policy, 1002).state).toBe('half_open');
    expect(breakerAdmission(s, policy, 1002, 10_000)).toBe('probe');
    s = breakerStarted(s, policy, 1003);
    expect(breakerAdmission(s, policy, 1004, 10_000)).toBe('none');
    s = breakerResult(s, policy, 1005, true);
    expect(s.state).toBe('closed');
    expect(breakerAdmission(s, policy, 1006, 10_000)).toBe('all');
  });

  it('reopens when the probe fails, and a lost probe stops blocking after probeStaleMs', () => {
    let s = closedBreaker();
    for (let t = 0; t < 3; t++) s = breakerResult(s, policy, t, false);
    s = breakerStarted(s, policy, 1100);
    expect(breakerAdmission(s, policy, 1150, 100)).toBe('none');
    expect(breakerAdmission(s, policy, 1201, 100)).toBe('probe');
    s = breakerResult(s, policy, 1300, false);
    expect(s.state).toBe('open');
    expect(s.openedAt).toBe(1300);
    expect(breakerAdmission(s, policy, 2000, 100)).toBe('none');
  });

  it('opens on the failure ratio once minRequests results are in; successes reset the streak', () => {
    let s = closedBreaker();
    for (const ok of [false, true, false, true]) s = breakerResult(s, policy, 0, ok);
    expect(s.state).toBe('open');
    let t = closedBreaker();
    for (const ok of [false, true, true]) t = breakerResult(t, policy, 0, ok);
    expect(t.state).toBe('closed');
    expect(t.consecutiveFailures).toBe(0);
  });

  it('ignores results that arrive while open', () => {
    let s = closedBreaker();
    for (let t = 0; t < 3; t++) s = breakerResult(s, policy, t, false);
    expect(breakerResult(s, policy, 10, true)).toEqual(s);
  });
});

describe('quarantine window', () => {
  const q = { failures: 3, windowMs: 1000 };
  it('quarantines at N failures within the window, not when they are spread out', () => {
    let s = clearQuarantine();
    s = quarantineFailure(s, q, 0);
    s = quarantineFailure(s, q, 600);
    s = quarantineFailure(s, q, 1200); // the first one left the window
    expect(s.quarantinedAt).toBeNull();
    expect(recentFailures(s, q, 1300)).toBe(2);
    s = quarantineFailure(s, q, 1300);
    expect(s.quarantinedAt).toBe(1300);
    // It stays quarantined however time passes: only a reset clears it.
    expect(quarantineFailure(s, q, 99_999).quarantinedAt).toBe(1300);
  });
});

describe('merging two nodes\' views (a shared store)', () => {
  const q = { failures: 4, windowMs: 100 };

  it('counts each failure once, and quarantines when the nodes\' failures together reach the limit', () => {
    // Each node has seen two failures of its own and one it read from the other.
    const a = { failures: [10, 11, 12], quarantinedAt: null };
    const b = { failures: [11, 13, 14], quarantinedAt: null };
    expect(mergeQuarantine(a, b, { failures: 9, windowMs: 100 }, 20, 0)).toEqual({ failures: [10, 11, 12, 13, 14], quarantinedAt: null });
    expect(mergeQuarantine(a, b, q, 20, 0)).toEqual({ failures: [10, 11, 12, 13, 14], quarantinedAt: 20 });
    // Two failures in the same millisecond on one node stay two.
    expect(mergeQuarantine({ failures: [5, 5], quarantinedAt: null }, { failures: [5], quarantinedAt: null }, q, 20, 0).failures).toEqual([5, 5]);
    // Failures that left the window do not count.
    expect(mergeQuarantine(a, b, q, 112, 0)).toEqual({ failures: [13, 14], quarantinedAt: null });
    // Two nodes failing in the same millisecond: each failure is tagged with its node, so both count.
    let onA = quarantineFailure(clearQuarantine(), q, 7, 'node-a');
    let onB = quarantineFailure(clearQuarantine(), q, 7, 'node-b');
    onA = quarantineFailure(onA, q, 8, 'node-a');
    onB = quarantineFailure(onB, q, 8, 'node-b');
    expect(mergeQuarantine(onA, onB, q, 9, 0)).toEqual({ failures: ['7@node-a', '7@node-b', '8@node-a', '8@node-b'], quarantinedAt: 9 });
    expect(recentFailures(mergeQuarantine(onA, onB, q, 9, 0), q, 9)).toBe(4);
    // A merged view merged again with either side counts nothing twice.
    expect(mergeQuarantine(mergeQuarantine(onA, onB, q, 9, 0), onA, { failures: 9, windowMs: 100 }, 9, 0).failures).toHaveLength(4);
  });

  it('keeps a quarantine either node recorded, until a reset newer than it', () => {
    const held = { failures: [1, 2, 3, 4], quarantinedAt: 4 };
    const fresh = clearQuarantine();
    expect(mergeQuarantine(fresh, held, q, 50, 0).quarantinedAt).toBe(4);
    expect(mergeQuarantine(held, fresh, q, 50, 0).quarantinedAt).toBe(4);
    // Reset at 30: what happened before it is gone; failures after it count.
    expect(mergeQuarantine(held, { failures: [31], quarantinedAt: null }, q, 50, 30)).toEqual({ failures: [31], quarantinedAt: null });
  });

  it('lets the breaker that changed state last win: opened anywhere holds everyone, closed by a probe or reset lets everyone go', () => {
    let open = closedBreaker();
    for (let t = 0; t < 3; t++) open = breakerResult(open, policy, t, false);
    const closed = closedBreaker();
    expect(mergeBreaker(closed, open)).toBe(open);
    expect(mergeBreaker(open, closed)).toBe(open);
    // The probe succeeded on the other node after the breaker opened: closed wins.
    const probed = breakerResult(breakerStarted(open, policy, 1_003), policy, 1_004, true);
    expect(probed).toMatchObject({ state: 'closed', closedAt: 1_004 });
    expect(mergeBreaker(open, probed)).toBe(probed);
    // A probe started on the other node blocks a second one here.
    const probing = breakerStarted(open, policy, 1_003);
    const merged = mergeBreaker(open, probing);
    expect(merged.probeStartedAt).toBe(1_003);
    expect(breakerAdmission(merged, policy, 1_005, 10_000)).toBe('none');
  });
});
