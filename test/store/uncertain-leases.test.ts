/**
 * UncertainLeases (src/store/postgres/uncertain-leases.ts) on its own: a
 * call is undone before the next lease, then swept again until its leases
 * would have expired (capped), and a failed undo blocks the lease. The real
 * race on PostgreSQL is in postgres-uncertain-lease.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { SWEEP_FOR_MAX_MS, UncertainLeases } from '../../src/store/postgres/uncertain-leases.js';
import { waitFor } from '../helpers/wait-for.js';

function harness(answer: () => Array<{ queue: string }> = () => []) {
  let now = 1_000;
  const released: Array<{ workerId: string; calls: string[] }> = [];
  const woken: string[][] = [];
  let failing = false;
  const leases = new UncertainLeases(
    async (workerId, calls) => {
      if (failing) throw new Error('store unreachable');
      released.push({ workerId, calls: [...calls] });
      return answer();
    },
    () => now,
    (queues) => woken.push(queues),
    5,
  );
  return { leases, released, woken, tick: (ms: number) => (now += ms), fail: (on: boolean) => (failing = on) };
}

describe('UncertainLeases', () => {
  it('undoes a call before the next lease, sweeps it again until its leases expire, then forgets it', async () => {
    const h = harness(() => [{ queue: 'default' }]);
    h.leases.note('c1', 'w', 1_000 + 35_000);
    await h.leases.beforeLease('w');
    expect(h.released).toEqual([{ workerId: 'w', calls: ['c1'] }]);
    expect(h.woken).toEqual([['default']]);
    // A later commit of the same call is caught by the sweep, without another lease.
    await waitFor(() => h.released.length >= 3, { timeoutMs: 2_000, message: 'swept again' });
    // Undone once already: the next lease does not wait for another undo (a failing one would throw here).
    h.fail(true);
    await h.leases.beforeLease('w');
    h.fail(false);
    h.tick(35_001);
    const settled = h.released.length;
    await new Promise((resolve) => setTimeout(resolve, 50));
    // One sweep may have been under way when the clock moved.
    expect(h.released.length - settled, 'expired: no longer swept').toBeLessThanOrEqual(1);
    h.leases.close();
  });

  it('throws when the undo fails, and keeps the call for the next lease', async () => {
    const h = harness();
    h.leases.note('c1', 'w', 50_000);
    h.fail(true);
    await expect(h.leases.beforeLease('w')).rejects.toThrow(/unreachable/);
    h.fail(false);
    await h.leases.beforeLease('w');
    expect(h.released[0]).toEqual({ workerId: 'w', calls: ['c1'] });
    h.leases.close();
  });

  it('undoes only the leasing worker\'s calls before its lease', async () => {
    const h = harness();
    h.leases.note('a1', 'a', 50_000);
    h.leases.note('b1', 'b', 50_000);
    await h.leases.beforeLease('a');
    expect(h.released[0]).toEqual({ workerId: 'a', calls: ['a1'] });
    h.leases.close();
  });

  it('sweeps a call for at most SWEEP_FOR_MAX_MS, however long its lease', async () => {
    const h = harness();
    h.leases.note('c1', 'w', 1_000 + 24 * 3_600_000);
    await h.leases.beforeLease('w');
    h.tick(SWEEP_FOR_MAX_MS + 1);
    const settled = h.released.length;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(h.released.length - settled).toBeLessThanOrEqual(1);
    h.leases.close();
  });
});
