/**
 * `Dispatcher.wake(handlers)`: a wake naming a handler that lands while a
 * lease is out must not let that lease mark the handler idle (the lease may
 * have read before the new job committed); otherwise the job would wait for
 * the next wake of all handlers. Real SQLite file.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/core/config.js';
import type { Dispatcher } from '../../src/runtime/dispatcher.js';
import type { LeasedJob, NewJob } from '../../src/core/types.js';
import type { LeaseRequest } from '../../src/store/engine.js';
import { openSqliteEngine, type SqliteEngine } from '../../src/store/sqlite/sqlite-engine.js';
import { dispatcherOn } from '../helpers/dispatcher.js';
import { waitFor } from '../helpers/wait-for.js';

const dir = mkdtempSync(join(tmpdir(), 'drover-dispatcher-wake-'));
let engine: SqliteEngine | null = null;
let dispatcher: Dispatcher | null = null;

afterEach(async () => {
  dispatcher?.stopLeasing();
  await dispatcher?.whenIdle();
  await engine?.close();
  rmSync(dir, { recursive: true, force: true });
});

const job = (handler: string): NewJob => ({ handler, queue: 'default', payload: null, priority: 0, runAt: Date.now(), maxAttempts: 3 });

describe('dispatcher: named wakes', () => {
  it('a wake for a handler during a lease that found nothing for it keeps the handler awake', async () => {
    engine = await openSqliteEngine({ path: join(dir, 'drover.db'), clock: Date.now });
    await engine.migrate();
    const ran: string[] = [];
    const config = resolveConfig({ handlers: [{ name: 'a', run: () => void ran.push('a') }, { name: 'b', run: () => void ran.push('b') }], databaseUrl: ':memory:' }, {}, {});
    const requests: LeaseRequest[] = [];
    let raced = false;
    const lease = async (request: LeaseRequest): Promise<LeasedJob[]> => {
      requests.push(request);
      const leased = await engine!.lease(request);
      // The first lease has read: a job of a commits now and its wake names a.
      if (!raced) {
        raced = true;
        await engine!.enqueue([job('a')]);
        dispatcher!.wake(['a']);
      }
      return leased;
    };
    dispatcher = dispatcherOn(engine, config.handlers, lease);
    dispatcher.start();
    // No other wake comes: only the raced wake can get a's job leased.
    await waitFor(() => ran.includes('a'), { timeoutMs: 5_000, message: "a's job runs" });
    // The lease after the race asked for a alone: b was found idle and nobody named it.
    expect(requests.at(-1)!.handlers.map((h) => h.name)).toEqual(['a']);
  });
});
