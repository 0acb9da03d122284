/**
 * Peers (Graphile Worker, pg-boss, BullMQ) as bench "systems", measured the
 * same way as Drover: jobs are enqueued from the bench process through the
 * peer's own client library, and handlers run in a separate worker process
 * (`node bench/systems/peer-worker.mjs <adapter> <variant>`) that prints the
 * same `bench:<kind> <json>` lines as Drover's bench worker config.
 *
 * An adapter module exports:
 *   name(variant), settings(variant)
 *   prepare() → ctx                      a throwaway schema / Redis db for ONE run
 *   destroy(ctx)                         drop it (always called)
 *   openClient(ctx) → { add(payload), addMany(payloads), close() }
 *   startWorker(ctx, variant, { handler, concurrency }) → stop()   (in peer-worker.mjs)
 *   crash: { setting, defaultSeconds, waitSeconds }   what recovery uses, and how long we wait
 * ctx is JSON (passed to the worker process as BENCH_CTX).
 */
import { fileURLToPath } from 'node:url';
import { now, sleep } from '../lib/clock.mjs';
import { cpuSecondsOf, memoryOf, spawnTracked } from '../lib/processes.mjs';
import { distribution } from '../lib/stats.mjs';

const WORKER = fileURLToPath(new URL('./peer-worker.mjs', import.meta.url));

export function peerSystem(adapterId, adapter, variant = 'default', options = {}) {
  // Extra `node` flags for the worker (e.g. --cpu-prof from bench/profile.mjs), as Drover's system takes.
  const nodeArgs = options.nodeArgs ?? (process.env.BENCH_WORKER_NODE_ARGS?.split(' ').filter(Boolean) ?? []);
  async function withRun(body) {
    const ctx = await adapter.prepare();
    const workers = [];
    const start = (mode, env = {}) => {
      const w = spawnTracked(process.execPath, [...nodeArgs, WORKER, adapterId, variant], {
        env: { ...process.env, BENCH_MODE: mode, BENCH_CTX: JSON.stringify(ctx), ...env },
        label: `${adapter.name(variant)} worker (${mode})`,
      });
      workers.push(w);
      return w;
    };
    try {
      return await body(ctx, start);
    } finally {
      await Promise.all(workers.map((w) => w.stop(5_000)));
      await adapter.destroy(ctx);
    }
  }

  async function closedLoop(n, inFlight, send) {
    let next = 0;
    const started = now();
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (next < n) await send(next++);
      }),
    );
    return now() - started;
  }

  async function enqueueRun(n, inFlight, perCall) {
    return withRun(async (ctx) => {
      const client = await adapter.openClient(ctx);
      try {
        const calls = Math.ceil(n / perCall);
        const send = (i) => (perCall === 1 ? client.add({ i }) : client.addMany(Array.from({ length: perCall }, (_, j) => ({ i: i * perCall + j }))));
        const warm = Math.max(inFlight * 2, Math.ceil(calls / 100));
        await closedLoop(warm, inFlight, send);
        const ms = await closedLoop(calls, inFlight, send);
        return { jobs: calls * perCall, seconds: ms / 1000, jobsPerSec: (calls * perCall) / (ms / 1000), inFlight, jobsPerCall: perCall };
      } finally {
        await client.close();
      }
    });
  }

  return {
    name: adapter.name(variant),
    settings: adapter.settings(variant),
    async setup() {},
    enqueueSingle: (n, inFlight) => enqueueRun(n, inFlight, 1),
    enqueueBulk: (n, batch) => enqueueRun(n, 1, batch),

    /** As Drover's drain(); `seriesMs` adds the run series (bench/lib/run-series.mjs). */
    drain(n, concurrency, _isolation = 'inline', { seriesMs = 0 } = {}) {
      return withRun(async (ctx, start) => {
        const client = await adapter.openClient(ctx);
        const seedStart = now();
        try {
          for (let i = 0; i < n; i += 500) await client.addMany(Array.from({ length: Math.min(500, n - i) }, (_, j) => ({ i: i + j })));
        } finally {
          await client.close();
        }
        const seedSeconds = (now() - seedStart) / 1000;
        const spawnedAt = now();
        const worker = start('drain', { BENCH_EXPECT: String(n), BENCH_CONCURRENCY: String(concurrency), ...(seriesMs ? { BENCH_SERIES_MS: String(seriesMs) } : {}) });
        const done = await worker.waitForLine(/^bench:drain (.*)$/, Math.max(120_000, n * 10), 'the drain report');
        const memory = memoryOf(worker.pid);
        const cpuSeconds = cpuSecondsOf(worker.pid);
        const { count, first, last, series, seriesCpuUs } = JSON.parse(done.match[1]);
        const ms = last - first;
        return { jobs: count, concurrency, seconds: ms / 1000, jobsPerSec: (count - 1) / (ms / 1000), firstRunAfterSpawnMs: first - spawnedAt, peakRssMiB: memory.peakRssMiB, workerCpuSeconds: cpuSeconds, seedSeconds, workerPid: worker.pid, profileWindowUs: [first * 1000, last * 1000], ...(series ? { series, seriesCpuUs, firstRunAt: first } : {}) };
      });
    },

    latency(rate, seconds) {
      return withRun(async (ctx, start) => {
        const total = Math.round(rate * seconds);
        const worker = start('latency', { BENCH_EXPECT: String(total) });
        await worker.waitForLine(/^bench:ready/, 60_000, 'its ready line');
        const client = await adapter.openClient(ctx);
        try {
          const interval = 1000 / rate;
          const pace = async (count, payload) => {
            const pending = [];
            let maxLagMs = 0;
            const t0 = now() + 2;
            for (let i = 0; i < count; i++) {
              const due = t0 + i * interval;
              const wait = due - now();
              if (wait > 0.5) await sleep(wait);
              const sent = now();
              maxLagMs = Math.max(maxLagMs, sent - due);
              pending.push(client.add(payload(sent)));
            }
            const sendSeconds = (now() - t0) / 1000;
            await Promise.all(pending);
            return { maxLagMs, sendSeconds };
          };
          await pace(Math.min(rate, total), (sent) => ({ sent, warm: true }));
          await sleep(2500); // the warm-up jobs drain even with pg-boss's 0.5 s poll; then the worker is idle
          const paced = await pace(total, (sent) => ({ sent }));
          const report = await worker.waitForLine(/^bench:latency (.*)$/, 60_000, 'the latency report');
          const { samples } = JSON.parse(report.match[1]);
          return { rate, seconds, jobs: total, achievedRate: total / paced.sendSeconds, maxSendLagMs: paced.maxLagMs, latencyMs: distribution(samples), workerPid: worker.pid };
        } finally {
          await client.close();
        }
      });
    },

    /** SIGKILL the worker holding a job, start a new one, time until the job starts again; bounded by crash.waitSeconds. */
    crashRecovery() {
      return withRun(async (ctx, start) => {
        const { setting, defaultSeconds, waitSeconds } = adapter.crash;
        let worker = start('crash');
        await worker.waitForLine(/^bench:ready/, 60_000, 'its ready line');
        const client = await adapter.openClient(ctx);
        try {
          await client.add({ crash: true });
        } finally {
          await client.close();
        }
        await worker.waitForLine(/^bench:started /, 30_000, 'the job starting');
        const killedAt = now();
        worker.kill('SIGKILL');
        await worker.exited;
        worker = start('crash');
        try {
          const again = await worker.waitForLine(/^bench:started /, waitSeconds * 1000, 'the job starting again');
          return { seconds: (again.at - killedAt) / 1000, setting, defaultSeconds };
        } catch (error) {
          if (!/did not print/.test(String(error))) throw error;
          return { seconds: waitSeconds, lowerBound: true, setting, defaultSeconds, note: `not restarted within the ${waitSeconds} s we wait; by default it would be after ${setting}` };
        }
      });
    },

    async teardown() {},
  };
}
