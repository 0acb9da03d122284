// Drover config for the bench's worker processes (`drover start --config` this
// file). BENCH_MODE picks the one handler the workload needs, so the node leases
// for exactly one handler, as a real single-purpose worker would. Results go to
// stdout as single `bench:<kind> <json>` lines (Drover's own logs are JSON
// objects, so the prefix cannot collide). Timestamps are ms on the machine's
// monotonic clock (bench/lib/clock.mjs), comparable with the bench process's.
//
//   intake   `sink` (concurrency 1) parks the first job until shutdown, so every
//            other enqueued job stays queued: the node does intake work only.
//   drain    `noop` (concurrency BENCH_CONCURRENCY) does nothing; after
//            BENCH_EXPECT runs it prints the first and last run times.
//            BENCH_SERIES_MS=50 adds `series`: runs per 50 ms bucket from the
//            first run, and the process's CPU at each (bench/lib/run-series.mjs).
//            BENCH_ISOLATION=thread runs it with `isolation: 'thread'`: then
//            each handler thread counts its own runs in shared memory (no
//            message per job, which would add to what is measured); the main
//            thread adds them up and prints the same report.
//   latency  `noop` records now - payload.sent at handler start (payload.warm
//            jobs are not recorded); after BENCH_EXPECT samples it prints them.
//            BENCH_CAPS (JSON) sets the config's `flow` (lease caps); BENCH_QUEUE_FLOW=1 the default queue's weights and fairness.
//   crash    `block` prints when it starts and parks until shutdown.
//   durable  `plain` returns at once; `steps` runs payload.n no-op
//            ctx.step.run steps and prints how long they took (`bench:steps`);
//            `three` runs three steps and returns; `waiter` waits in
//            ctx.step.waitForEvent for `bench.go` with data.job = its id (or,
//            payload.interrupt, in ctx.step.interrupt) and returns what woke it;
//            `rsteps` is run by a remote worker (drover-remote-steps.mjs).
//
// Everything else is Drover's default, except the per-key API rate limit
// (default 5,000 requests/s per route), which is off: the single-enqueue
// workload measures intake, and exceeds that limit by design.

import { BroadcastChannel, isMainThread, threadId } from 'node:worker_threads';
import { FLOW_QUEUE } from '../lib/flow.mjs';
import { runSeries } from '../lib/run-series.mjs';

const mode = process.env.BENCH_MODE;
const isolation = process.env.BENCH_ISOLATION === 'thread' ? 'thread' : 'inline';
const expect = Number(process.env.BENCH_EXPECT ?? 0);
const concurrency = process.env.BENCH_CONCURRENCY ? Number(process.env.BENCH_CONCURRENCY) : undefined;
const seriesMs = Number(process.env.BENCH_SERIES_MS ?? 0);

/** bench/lib/clock.mjs `now`: the machine's monotonic clock, shared by every process. */
const now = () => Number(process.hrtime.bigint()) / 1e6;
/** Monotonic µs, the clock of `node --cpu-prof` sample times: lets bench/profile.mjs cut a profile to the measured window. */
const mono = () => Number(process.hrtime.bigint() / 1000n);
const report = (kind, value) => process.stdout.write(`bench:${kind} ${JSON.stringify(value)}\n`);
const parkUntilAborted = (ctx) => new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));

function drainHandler() {
  let count = 0;
  let first = 0;
  let last = 0;
  let monoFirst = 0;
  const series = seriesMs ? runSeries(seriesMs) : null;
  // Several worker processes sharing one drain (BENCH_EXPECT=0): each reports its own share when it exits.
  if (!expect) process.on('exit', () => report('drain', { count, first, last }));
  return {
    name: 'noop',
    ...(concurrency ? { concurrency } : {}),
    run() {
      last = now();
      if (count === 0) {
        first = last;
        monoFirst = mono();
      }
      series?.note(last);
      if (++count === expect) report('drain', { count, first, last, monoFirst, monoLast: mono(), ...series?.report() });
    },
  };
}

/**
 * The drain handler with `isolation: 'thread'`: this module is loaded in the
 * main thread and again in every handler thread. The threads write their
 * {count, first, last} into a SharedArrayBuffer the main thread hands out once
 * (over a BroadcastChannel, closed right after), and the main thread polls it:
 * nothing is posted per job and no thread is woken to measure.
 */
const SHARE_SLOTS = 256;
function threadDrainHandler() {
  const channel = new BroadcastChannel('drover-bench-drain');
  channel.unref();
  if (isMainThread) {
    const shared = new Float64Array(new SharedArrayBuffer(8 * 3 * (SHARE_SLOTS + 1)));
    channel.onmessage = () => channel.postMessage(shared);
    const summary = () => {
      let count = 0;
      let first = Infinity;
      let last = 0;
      let threads = 0;
      for (let i = 1; i <= SHARE_SLOTS; i++) {
        const n = shared[i * 3];
        if (!n) continue;
        threads++;
        count += n;
        first = Math.min(first, shared[i * 3 + 1]);
        last = Math.max(last, shared[i * 3 + 2]);
      }
      return { count, first: threads ? first : 0, last, threads };
    };
    if (expect) {
      const poll = setInterval(() => {
        const s = summary();
        if (s.count < expect) return;
        clearInterval(poll);
        report('drain', s);
      }, 5);
      poll.unref();
    } else {
      process.on('exit', () => report('drain', summary()));
    }
  } else {
    channel.onmessage = ({ data }) => {
      // Other threads' hellos come here too: wait for the main thread's buffer.
      if (shared || !(data instanceof Float64Array)) return;
      shared = data;
      // A slot per thread; thread ids grow with restarts, so wrap (a drain restarts none).
      base = ((threadId % SHARE_SLOTS) + 1) * 3;
      channel.close();
      if (count) {
        shared[base + 1] = first;
        shared[base + 2] = last;
        shared[base] = count;
      }
    };
    channel.postMessage('hello');
  }
  let shared = null;
  let base = 0;
  let count = 0;
  let first = 0;
  let last = 0;
  return {
    name: 'noop',
    isolation: 'thread',
    ...(concurrency ? { concurrency } : {}),
    run() {
      last = now();
      if (count === 0) first = last;
      count++;
      if (shared) {
        if (count === 1) shared[base + 1] = first;
        shared[base + 2] = last;
        shared[base] = count;
      }
    },
  };
}

function latencyHandler() {
  const samples = [];
  const sentAt = [];
  const traced = globalThis.__benchStages ? [] : null;
  let monoFirst = 0;
  return {
    name: 'noop',
    ...(concurrency ? { concurrency } : {}),
    run(ctx) {
      const started = now();
      const { sent, warm } = ctx.job.payload;
      if (warm) return;
      if (samples.length === 0) monoFirst = mono();
      samples.push(Math.round((started - sent) * 1000) / 1000);
      sentAt.push(sent);
      if (traced) traced.push(Object.assign(globalThis.__benchStages.bySent.get(sent) ?? {}, { started }));
      if (samples.length === expect) {
        // BENCH_STAGES=1 (bench/lib/stage-trace.mjs): each job's stamps, the inserts and the GCs.
        const all = globalThis.__benchStages;
        all?.settle(traced);
        const stages = traced && { jobs: traced, inserts: all.inserts, gc: all.gc, loop: all.loop, batches: all.batches, syncs: all.syncs };
        report('latency', { samples, sentAt, monoFirst, monoLast: mono(), ...(stages ? { stages } : {}) });
      }
    },
  };
}

function durableHandlers() {
  return [
    { name: 'plain', run: () => ({ ok: true }) },
    {
      name: 'steps',
      async run(ctx) {
        const { n } = ctx.job.payload;
        const started = now();
        for (let i = 0; i < n; i++) await ctx.step.run(`s${i}`, () => i);
        report('steps', { job: ctx.job.id, n, ms: now() - started });
        return n;
      },
    },
    {
      name: 'three',
      async run(ctx) {
        const a = await ctx.step.run('one', () => 1);
        const b = await ctx.step.run('two', () => a + 1);
        return ctx.step.run('three', () => b + 1);
      },
    },
    {
      name: 'waiter',
      async run(ctx) {
        if (ctx.job.payload.interrupt) return ctx.step.interrupt('go', { prompt: 'go on?' });
        return ctx.step.waitForEvent('go', { event: 'bench.go', match: { 'data.job': ctx.job.id } });
      },
    },
    { name: 'rsteps', remote: true },
  ];
}

const handlers = {
  intake: () => ({ name: 'sink', concurrency: 1, run: parkUntilAborted }),
  drain: () => (isolation === 'thread' ? threadDrainHandler() : drainHandler()),
  latency: latencyHandler,
  crash: () => ({
    name: 'block',
    run(ctx) {
      report('started', { job: ctx.job.id, attempt: ctx.job.attempt, at: now() });
      return parkUntilAborted(ctx);
    },
  }),
};

if (mode !== 'durable' && !handlers[mode]) throw new Error(`BENCH_MODE must be one of ${[...Object.keys(handlers), 'durable'].join(', ')}; got ${mode}`);

// BENCH_QUEUE_FLOW=1: the default queue with flow control on (weights and tenant fairness), as the bench seeded it (drover.mjs FLOW_QUEUE).
const queues = process.env.BENCH_QUEUE_FLOW === '1' ? { queues: { default: FLOW_QUEUE } } : {};
// BENCH_CAPS: the config's `flow` (lease caps) as JSON, for the caps workload's drains.
const flow = process.env.BENCH_CAPS ? { flow: JSON.parse(process.env.BENCH_CAPS) } : {};

export default { handlers: mode === 'durable' ? durableHandlers() : [handlers[mode]()], ...queues, rateLimit: { enabled: false }, ...flow };
