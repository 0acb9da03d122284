/**
 * How many of a lease's jobs the dispatcher tells the store will start at
 * once (`LeaseRequest.start`, marked by the lease itself) is counted when the
 * store runs the lease, not when it is asked for (src/runtime/lease-room.ts):
 * a quick lane runs its whole buffer before its next lease reaches the
 * store, so a lease asked with jobs still buffered finds the slots free.
 * Real SQLite file: its lease runs in the next group commit, a turn later.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/core/config.js';
import type { NewJob } from '../../src/core/types.js';
import type { Dispatcher } from '../../src/runtime/dispatcher.js';
import type { LeaseRequest } from '../../src/store/engine.js';
import { openSqliteEngine, type SqliteEngine } from '../../src/store/sqlite/sqlite-engine.js';
import { dispatcherOn } from '../helpers/dispatcher.js';
import { waitFor } from '../helpers/wait-for.js';

let dir: string | null = null;
let engine: SqliteEngine | null = null;
let dispatcher: Dispatcher | null = null;

afterEach(async () => {
  dispatcher?.stopLeasing();
  await dispatcher?.whenIdle();
  await engine?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  dispatcher = engine = dir = null;
});

const job = (i: number): NewJob => ({ handler: 'h', queue: 'default', payload: { i }, priority: 0, runAt: Date.now(), maxAttempts: 3 });

describe('dispatcher: starts marked in the lease', () => {
  it('counts them when the store runs the lease: one asked with jobs buffered marks the slots its buffer no longer fills', async () => {
    dir = mkdtempSync(join(tmpdir(), 'drover-lease-starts-'));
    engine = await openSqliteEngine({ path: join(dir, 'drover.db') });
    await engine.migrate();
    const n = 40;
    await engine.enqueue(Array.from({ length: n }, (_, i) => job(i)));
    const ran: string[] = [];
    const config = resolveConfig({ handlers: [{ name: 'h', concurrency: 2, run: (ctx: { job: { id: string } }) => void ran.push(ctx.job.id) }], databaseUrl: ':memory:' }, {}, {});
    // Each lease as asked (jobs buffered then) and the `start` the store read for it.
    const leases: Array<{ bufferedAtAsk: number; request: LeaseRequest }> = [];
    const lease = async (request: LeaseRequest) => {
      leases.push({ bufferedAtAsk: dispatcher!.bufferedCount, request });
      return engine!.lease(request);
    };
    // Leases of 4 with a window of 8: a lease returns 4, 2 start, and the 2 left (≤ 8 / 2) ask for the next one at once.
    dispatcher = dispatcherOn(engine, config.handlers, lease, { leaseBatch: 4, prefetch: 8 });
    dispatcher.start();
    await waitFor(async () => ran.length === n && (await engine!.listJobs({ handler: 'h', limit: n })).every((j) => j.state === 'succeeded'), { timeoutMs: 10_000 });

    const askedWhileBuffered = leases.filter((l) => l.bufferedAtAsk > 0);
    expect(askedWhileBuffered.length).toBeGreaterThan(0);
    // By the time the store ran them, the buffer had run dry: both slots were free.
    for (const { request } of askedWhileBuffered) expect(request.handlers).toEqual([expect.objectContaining({ name: 'h', start: 2 })]);
    // Every job ran once, none counted a crash or handed back.
    expect(new Set(ran).size).toBe(n);
    for (const j of await engine.listJobs({ handler: 'h', limit: n })) expect(j).toMatchObject({ attempts: 1, crashes: 0 });
  });
});
