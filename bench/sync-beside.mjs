#!/usr/bin/env node
/**
 * One mechanism of SQLite's enqueue→start tail, alone (docs/benchmarks.md
 * "SQLite enqueue→start p99, stage by stage"): a job enqueued into an idle
 * node just after the previous job's completion committed, while that
 * completion's WAL sync is out. Two builds in one process, alternated round
 * by round, each on its own file:
 *
 *   node bench/sync-beside.mjs <dist A> <dist B> [rounds] [gapMs]
 *
 * Each round replays what the latency workload's node does per job, on the
 * engine: job A's insert and its lease in one batch (the runtime's lease
 * alongside, intake-writer.ts); A's completion with the dispatcher's next
 * lease, which finds nothing and is answered at commit while the batch's sync
 * goes to the thread pool; then, `gapMs` after that commit (busy wait), job
 * B's insert and lease. Recorded: B's call → its lease answered (the moment
 * its handler could start). Prints per build p50/p90/p99 and the machine's load.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { now } from './lib/clock.mjs';
import { measureLoad } from './lib/machine.mjs';

const [distA, distB] = process.argv.slice(2, 4);
const rounds = Number(process.argv[4] ?? 400);
const gapMs = Number(process.argv[5] ?? 0.2);
if (!distA || !distB) throw new Error('usage: node bench/sync-beside.mjs <dist A> <dist B> [rounds] [gapMs]');

const job = (i) => ({ handler: 'h', queue: 'default', payload: { i }, priority: 0, runAt: Date.now(), maxAttempts: 3 });
const LEASE = { workerId: 'w', inProcess: true, handlers: [{ name: 'h', max: 10 }], limit: 10, leaseMs: 30_000 };

async function open(dist) {
  const { openSqliteEngine } = await import(pathToFileURL(resolve(dist, 'store/sqlite/sqlite-engine.js')).href);
  const dir = mkdtempSync(join(tmpdir(), 'sync-beside-'));
  const engine = await openSqliteEngine({ path: join(dir, 'drover.db') });
  await engine.migrate();
  return { dist, dir, engine, waits: [] };
}

/** An enqueue and the lease that rides in its batch; resolves with the leased job once the lease is answered. */
async function enqueueAndLease(engine, i) {
  const [, leased] = await Promise.all([engine.enqueue([job(i)]), engine.lease(LEASE)]);
  return leased[0];
}

async function round(side, i) {
  const { engine } = side;
  const a = await enqueueAndLease(engine, i);
  // A's completion and the next lease (nothing to find: answered at its commit, the sync on the pool).
  const done = engine.complete(a.id, a.leaseToken, null, { row: false });
  await engine.lease(LEASE);
  const until = now() + gapMs;
  while (now() < until);
  const at = now();
  const b = await enqueueAndLease(engine, i);
  side.waits.push(now() - at);
  await done;
  await engine.complete(b.id, b.leaseToken, null, { row: false });
}

const pct = (v, p) => {
  const s = [...v].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))].toFixed(2);
};

const sides = [await open(distA), await open(distB)];
const load = measureLoad();
try {
  for (let i = 0; i < rounds; i++) for (const side of i % 2 ? [...sides].reverse() : sides) await round(side, i);
  for (const side of sides) {
    console.log(`${side.dist}: enqueue just after a completion's commit, call → lease answered p50 ${pct(side.waits, 50)} p90 ${pct(side.waits, 90)} p99 ${pct(side.waits, 99)} ms (${rounds} rounds, gap ${gapMs} ms)`);
  }
  console.log(`load: ${JSON.stringify(load())}`);
} finally {
  for (const side of sides) {
    await side.engine.close();
    rmSync(side.dir, { recursive: true, force: true });
  }
}
