/**
 * A lease still out when leasing stops (shutdown began) must not start its
 * jobs: they go back unspent, and `releaseBuffered` (the shutdown's hand-back)
 * waits for that lease instead of returning before it lands. Real SQLite file.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/core/config.js';
import type { LeasedJob, NewJob } from '../../src/core/types.js';
import type { LeaseRequest } from '../../src/store/engine.js';
import { openSqliteEngine, type SqliteEngine } from '../../src/store/sqlite/sqlite-engine.js';
import { dispatcherOn } from '../helpers/dispatcher.js';

let dir: string | null = null;
let engine: SqliteEngine | null = null;

afterEach(async () => {
  await engine?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  engine = null;
  dir = null;
});

const job = (): NewJob => ({ handler: 'h', queue: 'default', payload: null, priority: 0, runAt: Date.now(), maxAttempts: 3 });

describe('dispatcher: leasing stops while a lease is out', () => {
  it('hands that lease back unstarted, and releaseBuffered waits for it', async () => {
    dir = mkdtempSync(join(tmpdir(), 'drover-dispatch-stop-'));
    engine = await openSqliteEngine({ path: join(dir, 'drover.db') });
    await engine.migrate();
    const queued = (await engine.enqueue([job()]))[0]!.job;
    const ran: string[] = [];
    const config = resolveConfig({ handlers: [{ name: 'h', concurrency: 2, run: (ctx: { job: { id: string } }) => void ran.push(ctx.job.id) }], databaseUrl: ':memory:' }, {}, {});
    // The lease is taken in the store at once, but its answer is held until the test lets it go.
    let leaseTaken!: () => void;
    const taken = new Promise<void>((resolve) => (leaseTaken = resolve));
    let answer!: () => void;
    const answered = new Promise<void>((resolve) => (answer = resolve));
    const lease = async (request: LeaseRequest): Promise<LeasedJob[]> => {
      const leased = await engine!.lease(request);
      leaseTaken();
      await answered;
      return leased;
    };
    const dispatcher = dispatcherOn(engine, config.handlers, lease);
    dispatcher.start();
    await taken;
    expect((await engine.getJob(queued.id))?.state).toBe('running');

    dispatcher.stopLeasing();
    let released: number | null = null;
    const releasing = dispatcher.releaseBuffered().then((n) => (released = n));
    // Still waiting for the lease that is out.
    await new Promise((resolve) => setImmediate(resolve));
    expect(released).toBeNull();
    answer();
    await releasing;

    expect(ran).toEqual([]);
    expect(dispatcher.running.size).toBe(0);
    expect(dispatcher.bufferedCount).toBe(0);
    // Back in the queue with its attempt unspent.
    expect(await engine.getJob(queued.id)).toMatchObject({ state: 'queued', attempts: 0, crashes: 0 });
    expect((await engine.getAttempts(queued.id)).map((a) => a.outcome)).toEqual(['released']);
  });
});
