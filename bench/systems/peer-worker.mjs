#!/usr/bin/env node
/**
 * A peer's worker process: `node peer-worker.mjs <adapter> <variant>`, with
 * BENCH_MODE (drain | latency | crash), BENCH_CTX (the run's schema/db, JSON),
 * BENCH_EXPECT, BENCH_CONCURRENCY, BENCH_SERIES_MS (drain only). Prints
 * `bench:ready`, then the same `bench:<kind> <json>` lines as
 * bench/systems/drover-worker.config.mjs.
 */
import { runSeries } from '../lib/run-series.mjs';

const [adapterId, variant] = process.argv.slice(2);
const { adapter } = await import(`./${adapterId}.mjs`);
const mode = process.env.BENCH_MODE;
const ctx = JSON.parse(process.env.BENCH_CTX);
const expect = Number(process.env.BENCH_EXPECT ?? 0);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 10);
const seriesMs = Number(process.env.BENCH_SERIES_MS ?? 0);
/** bench/lib/clock.mjs `now`: the machine's monotonic clock, shared by every process. */
const now = () => Number(process.hrtime.bigint()) / 1e6;
const report = (kind, value) => process.stdout.write(`bench:${kind} ${JSON.stringify(value)}\n`);

let handler;
if (mode === 'drain') {
  let count = 0;
  let first = 0;
  const series = seriesMs ? runSeries(seriesMs) : null;
  handler = async () => {
    const t = now();
    if (count === 0) first = t;
    series?.note(t);
    if (++count === expect) report('drain', { count, first, last: t, ...series?.report() });
  };
} else if (mode === 'latency') {
  const samples = [];
  handler = async (payload) => {
    const started = now();
    if (payload.warm) return;
    samples.push(Math.round((started - payload.sent) * 1000) / 1000);
    if (samples.length === expect) report('latency', { samples });
  };
} else if (mode === 'crash') {
  handler = () => {
    report('started', { at: now() });
    return new Promise(() => {}); // holds the job until the process dies
  };
} else throw new Error(`unknown BENCH_MODE ${mode}`);

const stop = await adapter.startWorker(ctx, variant, { handler, concurrency: mode === 'drain' ? concurrency : 10 });
report('ready', {});
let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, async () => {
    if (stopping) return;
    stopping = true;
    const timer = setTimeout(() => process.exit(0), 2000);
    try {
      await stop();
    } finally {
      clearTimeout(timer);
      process.exit(0);
    }
  });
}
