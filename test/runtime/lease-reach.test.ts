/**
 * A lane whose leases take longer than its buffer lasts runs dry before each
 * refill (it asked with jobs buffered, and got them all only once none was
 * left); its window then reaches past its rate's size (lease-window.ts
 * `nextReach`), doubling per such lease up to LEASE_AHEAD_MAX, and drops back
 * when the lane goes idle. The dispatcher's clock is frozen here, so no
 * completion rate is ever measured: what sizes the window is the floor and
 * the reach alone. Real SQLite file.
 */
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/core/config.js';
import type { NewJob } from '../../src/core/types.js';
import type { Dispatcher } from '../../src/runtime/dispatcher.js';
import { LEASE_AHEAD_MAX, LEASE_AHEAD_MIN } from '../../src/runtime/lease-window.js';
import type { LeaseRequest } from '../../src/store/engine.js';
import type { SqliteEngine } from '../../src/store/sqlite/sqlite-engine.js';
import { dispatcherOn, sqliteForDispatchers } from '../helpers/dispatcher.js';
import { waitFor } from '../helpers/wait-for.js';

const stores = sqliteForDispatchers('drover-lease-reach-');
let engine: SqliteEngine | null = null;
let dispatcher: Dispatcher | null = null;

const CONCURRENCY = 2;
const job = (i: number): NewJob => ({ handler: 'h', queue: 'default', payload: { i }, priority: 0, runAt: Date.now(), maxAttempts: 3 });

/**
 * A dispatcher for `h` (a quick job) whose leases go out only once `holdLease()`
 * says so, recording what each asked for. Returns the asks and a count of runs.
 */
async function lane(holdLease: () => boolean): Promise<{ asks: number[]; ran: () => number }> {
  engine = await stores.engine();
  let ran = 0;
  // Each job takes a turn of the event loop, so the buffer empties over many turns and a refill is asked
  // for while jobs are still buffered (a lane that runs its whole buffer in one cascade asks with none).
  const run = async () => {
    await new Promise((resolve) => setImmediate(resolve));
    ran++;
  };
  const config = resolveConfig({ handlers: [{ name: 'h', concurrency: CONCURRENCY, run }], databaseUrl: ':memory:' }, {}, {});
  const asks: number[] = [];
  const lease = async (request: LeaseRequest) => {
    const ask = request.handlers.find((h) => h.name === 'h');
    if (ask) asks.push(ask.max);
    // A lease whose round trip outlasts the buffer: it comes back to a lane that ran dry.
    if (holdLease()) await waitFor(() => dispatcher!.bufferedCount === 0 || undefined, { timeoutMs: 5_000, message: 'the buffer ran dry' });
    return engine!.lease(request);
  };
  const frozen = 1_000_000;
  dispatcher = stores.watch(dispatcherOn(engine, config.handlers, lease, { clock: () => frozen }));
  return { asks, ran: () => ran };
}

describe('lease-ahead reach', () => {
  it('doubles the window per lease that comes back full to a dry lane, up to LEASE_AHEAD_MAX, and drops it once the lane is idle', async () => {
    let hold = true;
    const { asks, ran } = await lane(() => hold);
    const n = 3_000;
    await engine!.enqueue(Array.from({ length: n }, (_, i) => job(i)));
    dispatcher!.start();
    await waitFor(() => ran() === n || undefined, { timeoutMs: 20_000, message: `${n} jobs ran` });

    // First the slots only (no run time known yet), then the floor, then more as leases kept finding the lane dry.
    expect(asks[0]).toBe(CONCURRENCY);
    expect(asks[1]).toBeLessThanOrEqual(CONCURRENCY + LEASE_AHEAD_MIN);
    const most = Math.max(...asks);
    expect(most).toBeGreaterThanOrEqual(4 * LEASE_AHEAD_MIN);
    expect(most).toBeLessThanOrEqual(CONCURRENCY + LEASE_AHEAD_MAX);

    // The backlog is gone and the lane idle: a new burst starts from the floor again.
    await waitFor(async () => (await engine!.listJobs({ handler: 'h', state: 'succeeded', limit: n })).length === n || undefined, { timeoutMs: 10_000, message: 'all recorded' });
    hold = false;
    const before = asks.length;
    await engine!.enqueue(Array.from({ length: 100 }, (_, i) => job(n + i)));
    dispatcher!.wake(['h']);
    await waitFor(() => ran() === n + 100 || undefined, { timeoutMs: 10_000, message: 'the second burst ran' });
    expect(asks[before]).toBeLessThanOrEqual(CONCURRENCY + LEASE_AHEAD_MIN);
  });

  it('keeps the floor for a lane whose leases come back before its buffer runs dry', async () => {
    // Jobs of 5 ms at concurrency 2: the half-window left at an ask (32 jobs) lasts 80 ms, and a
    // lease is back within a turn or two.
    engine = await stores.engine();
    let ran = 0;
    const config = resolveConfig(
      { handlers: [{ name: 'h', concurrency: CONCURRENCY, run: () => new Promise<void>((resolve) => setTimeout(() => resolve(void ran++), 5)) }], databaseUrl: ':memory:' },
      {},
      {},
    );
    const asks: number[] = [];
    const lease = async (request: LeaseRequest) => {
      const ask = request.handlers.find((h) => h.name === 'h');
      if (ask) asks.push(ask.max);
      return engine!.lease(request);
    };
    dispatcher = stores.watch(dispatcherOn(engine, config.handlers, lease, { clock: () => 1_000_000 }));
    const n = 200;
    await engine.enqueue(Array.from({ length: n }, (_, i) => job(i)));
    dispatcher.start();
    await waitFor(() => ran === n || undefined, { timeoutMs: 20_000, message: `${n} jobs ran` });
    expect(Math.max(...asks)).toBeLessThanOrEqual(CONCURRENCY + LEASE_AHEAD_MIN);
  });
});
