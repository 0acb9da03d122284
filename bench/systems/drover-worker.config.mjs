// Drover config for the bench's worker processes (`drover start --config` this
// file). BENCH_MODE picks the one handler the workload needs, so the node leases
// for exactly one handler, as a real single-purpose worker would. Results go to
// stdout as single `bench:<kind> <json>` lines (Drover's own logs are JSON
// objects, so the prefix cannot collide). Timestamps are wall-clock ms with
// sub-ms resolution (performance.timeOrigin + performance.now()), comparable
// with the bench process's.
//
//   intake   `sink` (concurrency 1) parks the first job until shutdown, so every
//            other enqueued job stays queued: the node does intake work only.
//   drain    `noop` (concurrency BENCH_CONCURRENCY) does nothing; after
//            BENCH_EXPECT runs it prints the first and last run times.
//            BENCH_ISOLATION=thread runs it with `isolation: 'thread'`: then
//            each handler thread counts its own runs and posts its
//            {count, first, last} on a BroadcastChannel every 10 ms (not per
//            job, which would add a message per job to what is measured); the
//            main thread adds them up and prints the same report.
//   latency  `noop` records now - payload.sent at handler start (payload.warm
//            jobs are not recorded); after BENCH_EXPECT samples it prints them.
//   crash    `block` prints when it starts and parks until shutdown.
//
// Everything else is Drover's default, except the per-key API rate limit
// (default 5,000 requests/s per route), which is off: the single-enqueue
// workload measures intake, and exceeds that limit by design.

import { BroadcastChannel, isMainThread, threadId } from 'node:worker_threads';

const mode = process.env.BENCH_MODE;
const isolation = process.env.BENCH_ISOLATION === 'thread' ? 'thread' : 'inline';
const expect = Number(process.env.BENCH_EXPECT ?? 0);
const concurrency = process.env.BENCH_CONCURRENCY ? Number(process.env.BENCH_CONCURRENCY) : undefined;

const now = () => performance.timeOrigin + performance.now();
/** Monotonic µs, the clock of `node --cpu-prof` sample times: lets bench/profile.mjs cut a profile to the measured window. */
const mono = () => Number(process.hrtime.bigint() / 1000n);
const report = (kind, value) => process.stdout.write(`bench:${kind} ${JSON.stringify(value)}\n`);
const parkUntilAborted = (ctx) => new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));

function drainHandler() {
  let count = 0;
  let first = 0;
  let last = 0;
  let monoFirst = 0;
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
      if (++count === expect) report('drain', { count, first, last, monoFirst, monoLast: mono() });
    },
  };
}

/** The drain handler with `isolation: 'thread'`: this module is loaded in the main thread and again in every handler thread. */
function threadDrainHandler() {
  const channel = new BroadcastChannel('drover-bench-drain');
  channel.unref();
  if (isMainThread) {
    const shares = new Map();
    let reported = false;
    const total = () => [...shares.values()].reduce((n, s) => n + s.count, 0);
    const summary = () => {
      const all = [...shares.values()].filter((s) => s.count > 0);
      return { count: total(), first: Math.min(...all.map((s) => s.first)), last: Math.max(...all.map((s) => s.last)), threads: all.length };
    };
    channel.onmessage = ({ data }) => {
      shares.set(data.thread, data);
      if (!reported && expect && total() >= expect) {
        reported = true;
        report('drain', summary());
      }
    };
    if (!expect) process.on('exit', () => report('drain', shares.size ? summary() : { count: 0, first: 0, last: 0 }));
  }
  let count = 0;
  let first = 0;
  let last = 0;
  let posted = 0;
  const flush = () => {
    if (posted === count) return;
    posted = count;
    channel.postMessage({ thread: threadId, count, first, last });
  };
  return {
    name: 'noop',
    isolation: 'thread',
    ...(concurrency ? { concurrency } : {}),
    run() {
      last = now();
      if (count === 0) {
        first = last;
        setInterval(flush, 10).unref();
      }
      count++;
    },
  };
}

function latencyHandler() {
  const samples = [];
  const sentAt = [];
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
      if (samples.length === expect) report('latency', { samples, sentAt, monoFirst, monoLast: mono() });
    },
  };
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

if (!handlers[mode]) throw new Error(`BENCH_MODE must be one of ${Object.keys(handlers).join(', ')}; got ${mode}`);

export default { handlers: [handlers[mode]()], rateLimit: { enabled: false } };
