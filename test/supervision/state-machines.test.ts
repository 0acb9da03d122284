import { describe, expect, it } from 'vitest';
import { breakerAdmission, breakerAt, breakerResult, breakerStarted, closedBreaker, type BreakerPolicy } from '../../src/core/breaker.js';
import { clearQuarantine, quarantineFailure, recentFailures } from '../../src/core/quarantine.js';

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
