/**
 * A thread handler that stops loading after the node started (its module was
 * changed or broke on disk): its jobs are handed back without spending an
 * attempt (`handler_unavailable`), and the thread is retried after the
 * restart backoff, so the jobs run once the module loads again. Before a
 * start, checkThreadHandlers refuses such a handler outright.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { resolveConfig, type ResolvedHandler } from '../../src/core/config.js';
import type { LeasedJob } from '../../src/core/types.js';
import { LazyAbortController } from '../../src/runtime/job-runner.js';
import { checkThreadHandlers } from '../../src/runtime/thread-check.js';
import { ThreadPool } from '../../src/runtime/thread-pool.js';

const dir = mkdtempSync(join(tmpdir(), 'drover-thread-load-'));
const configPath = join(dir, 'drover.config.mjs');
const GOOD = "export default { handlers: [{ name: 'job', isolation: 'thread', run: (ctx) => ({ n: ctx.job.payload.n }) }] };";
const BROKEN = "throw new Error('half-written deploy');";
let pool: ThreadPool | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function handler(): ResolvedHandler {
  return resolveConfig({ handlers: [{ name: 'job', isolation: 'thread', run: () => null }], databaseUrl: ':memory:' }, {}).handlers.get('job')!;
}
function run(p: ThreadPool, n: number) {
  const job = { id: `job-${n}`, handler: 'job', queue: 'default', attempts: 1, maxAttempts: 3, payload: { n }, event: null } as unknown as LeasedJob;
  return p.run({ handler: handler(), job, controller: new LazyAbortController(), log: () => { throw new Error('no logging here'); }, heartbeat: async () => true, isShutdownAborted: () => false });
}

describe('a thread handler that cannot be loaded', () => {
  it('hands its jobs back unspent, then runs them once the module loads again', async () => {
    writeFileSync(configPath, BROKEN);
    const restarts: string[] = [];
    pool = new ThreadPool({ configPath, restartInitialMs: 1, restartMaxMs: 10, onRestart: (_h, _r, detail) => restarts.push(detail) });
    expect(await Promise.all([run(pool, 1), run(pool, 2)])).toEqual([
      { kind: 'aborted', reason: 'handler_unavailable' },
      { kind: 'aborted', reason: 'handler_unavailable' },
    ]);
    expect(restarts[0]).toMatch(/could not load the handler: half-written deploy/);
    writeFileSync(configPath, GOOD.replace('export default', 'export default /* v2 */'));
    // ESM caches a module by URL per thread; a new thread reads the file again. A thread restarted
    // (after 1 ms) before the write may still hold the broken module: its job is handed back the
    // same way, and a later thread runs it. Bounded: the restart backoff is at most 10 ms.
    const deadline = Date.now() + 10_000;
    let outcome = await run(pool, 3);
    while (outcome.kind !== 'succeeded' && Date.now() < deadline) {
      expect(outcome).toEqual({ kind: 'aborted', reason: 'handler_unavailable' });
      outcome = await run(pool, 3);
    }
    expect(outcome).toEqual({ kind: 'succeeded', result: { n: 3 } });
  });

  it('is refused before a start, naming the handler and the cause', async () => {
    writeFileSync(configPath, BROKEN);
    await expect(checkThreadHandlers(configPath, [handler()])).rejects.toThrow(/cannot be loaded in a worker thread, so the node did not start .*job: half-written deploy/);
    writeFileSync(configPath, GOOD);
    await expect(checkThreadHandlers(configPath, [handler()])).resolves.toBeUndefined();
  });
});
