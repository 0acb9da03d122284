/**
 * Drover as a bench "system". The engine-specific part is only where the store
 * lives (`storeUrl`), so drover-sqlite and a later drover-postgres share all of
 * this. Every measurement runs against a fresh store and worker processes
 * started the way users start them: `node bin/drover start --config ...`.
 *
 * Each workload method performs ONE run and returns its raw numbers; run.mjs
 * repeats and summarises. Every child process and temp dir is tracked
 * (lib/processes.mjs) and removed even when a run throws.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { now, sleep } from '../lib/clock.mjs';
import { FLOW_QUEUE } from '../lib/flow.mjs';
import { createClient } from '../lib/http.mjs';
import { watchJobStates } from '../lib/job-states.mjs';
import { cpuSecondsOf, makeTempDir, memoryOf, removeTempDir, spawnTracked } from '../lib/processes.mjs';
import { breakdown, formatBreakdown, STAGE_TRACE, watchClientSends } from '../lib/stage-breakdown.mjs';
import { distribution } from '../lib/stats.mjs';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'bin/drover');
const DIST = join(ROOT, 'dist');
const WORKER_CONFIG = fileURLToPath(new URL('./drover-worker.config.mjs', import.meta.url));
const REMOTE_STEPS = fileURLToPath(new URL('./drover-remote-steps.mjs', import.meta.url));
const KEY = 'drv_bench_admin_key_0123456789abcdef';
const READY = /^drover ready .* url=(\S+)$/;
const SEED_CHUNK = 1000;

/**
 * Wait (polling, untimed) until job `id` is suspended; with `interrupts`, the id
 * of its pending interrupt.
 */
async function suspendedWait(client, id, interrupts) {
  const started = now();
  for (;;) {
    const job = await client.getJson(`/v1/jobs/${encodeURIComponent(id)}`);
    if (job.state === 'suspended') {
      if (!interrupts) return null;
      if (job.wait?.interruptId) return job.wait.interruptId;
    }
    if (now() - started > 30_000) throw new Error(`job ${id} is ${job.state}, not suspended, after 30 s`);
    await sleep(2);
  }
}

/** Env for a worker: ours wins over anything DROVER_* the caller's shell set. */
function workerEnv(storeUrl, extra) {
  const env = { ...process.env };
  for (const name of Object.keys(env)) if (name.startsWith('DROVER_') || name.startsWith('BENCH_')) delete env[name];
  return {
    ...env,
    DROVER_DATABASE_URL: storeUrl,
    DROVER_BOOTSTRAP_ADMIN_KEY: KEY,
    DROVER_LOG_LEVEL: 'warn',
    DROVER_HOST: '127.0.0.1',
    DROVER_SHUTDOWN_GRACE_MS: '1000',
    ...extra,
  };
}

/**
 * @param {{ name: string, storeUrl: (dir: string) => string, settings: Record<string, unknown> }} engine
 * @param {{ nodeArgs?: string[] }} [options] extra `node` flags for workers (e.g. --cpu-prof)
 */
export function droverSystem(engine, options = {}) {
  // BENCH_WORKER_NODE_ARGS: V8 flags NODE_OPTIONS refuses (--trace-opt --trace-deopt; with BENCH_STDOUT_DIR).
  const nodeArgs = options.nodeArgs ?? (process.env.BENCH_WORKER_NODE_ARGS?.split(' ').filter(Boolean) ?? []);

  /** A fresh store plus the workers started on it; close() stops them and deletes the store. */
  function freshRun(label) {
    const dir = makeTempDir(`drover-bench-${label}-`);
    const storeUrl = engine.storeUrl(dir);
    // PostgreSQL: a throwaway schema per run (DROVER_PG_SCHEMA), dropped in close().
    const runEnv = engine.runEnv?.(dir) ?? {};
    const workers = new Set();
    return {
      dir,
      storeUrl,
      runEnv,
      /** Start `drover start` in a child process; resolves once it printed its ready line. */
      async startWorker(mode, extraEnv = {}, { waitReady = true, args = [] } = {}) {
        const worker = spawnTracked(process.execPath, [...nodeArgs, BIN, 'start', '--config', WORKER_CONFIG, '--port', '0', ...args], {
          cwd: dir,
          env: workerEnv(storeUrl, { ...runEnv, BENCH_MODE: mode, ...extraEnv }),
          label: `drover worker (${mode})`,
        });
        workers.add(worker);
        worker.ready = worker.waitForLine(READY, 30_000, 'its ready line').then(({ match, at }) => {
          worker.url = match[1];
          worker.readyAt = at;
          return worker;
        });
        worker.ready.catch(() => undefined); // observed by whoever awaits it
        if (waitReady) await worker.ready;
        return worker;
      },
      async close() {
        // Graceful stop: with --cpu-prof the profile is written on a clean exit.
        await Promise.all([...workers].map((w) => w.stop(10_000)));
        try {
          await engine.dropRun?.(runEnv);
        } finally {
          removeTempDir(dir);
        }
      },
    };
  }

  async function withRun(label, body) {
    const run = freshRun(label);
    try {
      return await body(run);
    } finally {
      await run.close();
    }
  }

  /** Committed counts by state, from the worker's own API. */
  async function counts(client) {
    const { queues } = await client.getJson('/v1/queues');
    return queues.find((q) => q.name === 'default').counts;
  }

  /**
   * Put `n` queued no-op jobs into the store with no worker running: an
   * in-process node that knows the handler only as a remote one, so it never leases it.
   * `flow`: `{ on, tenants, priorities }`: jobs spread round-robin over
   * `tenants` tenants and `priorities` priorities, into the default queue with
   * flow control on when `on` (weights and fairness, FLOW_QUEUE).
   */
  async function seed(storeUrl, n, runEnv = {}, flow = {}) {
    // A PostgreSQL node keeps its files (audit export, snapshots) in DROVER_DATA_DIR, default ./data: the bench's
    // cwd, shared by every run (a later run's audit export then refused the earlier one's). A temp dir of its own instead.
    const dataDir = process.env.DROVER_DATA_DIR;
    process.env.DROVER_DATA_DIR = makeTempDir('drover-bench-seed-');
    try {
      return await seedWith(storeUrl, n, runEnv, flow);
    } finally {
      removeTempDir(process.env.DROVER_DATA_DIR);
      if (dataDir === undefined) delete process.env.DROVER_DATA_DIR;
      else process.env.DROVER_DATA_DIR = dataDir;
    }
  }

  async function seedWith(storeUrl, n, runEnv, flow) {
    const [{ resolveConfig }, { startNode }, { createLogger }] = await Promise.all([
      import(pathToFileURL(join(DIST, 'core/config.js')).href),
      import(pathToFileURL(join(DIST, 'node/start-node.js')).href),
      import(pathToFileURL(join(DIST, 'obs/logger.js')).href),
    ]);
    // A flow-control run seeds through the same queue policy as its worker (drover-worker.config.mjs BENCH_QUEUE_FLOW), so no restamp at its start.
    const queues = flow.on ? { queues: { default: FLOW_QUEUE } } : {};
    // `remote: true`: the seeding node knows the handler (so it accepts its jobs) but never leases it. Stopping its
    // dispatcher after start was not enough: a lease already in flight could take and run seeded jobs.
    const config = resolveConfig({ handlers: [{ name: 'noop', remote: true }], ...queues, databaseUrl: storeUrl, ...(runEnv.DROVER_PG_SCHEMA ? { postgres: { schema: runEnv.DROVER_PG_SCHEMA } } : {}), log: { level: 'warn' } }, {}, {});
    // Logs to stderr: stdout carries only the results table.
    const logger = createLogger({ level: 'warn', destination: process.stderr });
    const node = await startNode({ config, bootstrapAdminKey: KEY, listen: false, print: () => {}, logger });
    try {
      const started = now();
      for (let from = 0; from < n; from += SEED_CHUNK) {
        const size = Math.min(SEED_CHUNK, n - from);
        const job = (i) => ({
          handler: 'noop',
          payload: { i },
          ...(flow.tenants ? { tenant: `t${i % flow.tenants}` } : {}),
          ...(flow.priorities ? { priority: i % flow.priorities } : {}),
        });
        await node.runtime.enqueueJobs(Array.from({ length: size }, (_, i) => job(from + i)));
      }
      const seconds = (now() - started) / 1000;
      const stats = (await node.store.queueStats()).find((q) => q.queue === 'default');
      if (stats?.counts.queued !== n) throw new Error(`seeding left ${JSON.stringify(stats?.counts)}; expected ${n} queued (did the seeding node run jobs?)`);
      const settings = typeof node.store.settings === 'function' ? node.store.settings() : null;
      return { seconds, settings };
    } finally {
      await node.shutdown(0);
    }
  }

  /** Run `n` POSTs, `inFlight` at a time; returns elapsed ms and per-request round trips. */
  async function closedLoop(n, inFlight, send) {
    const rtts = new Float64Array(n);
    let next = 0;
    const started = now();
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (next < n) {
          const i = next++;
          const t = now();
          await send(i);
          rtts[i] = now() - t;
        }
      }),
    );
    return { ms: now() - started, rtts };
  }

  async function intakeRun(label, n, inFlight, jobsPerRequest) {
    return withRun(label, async (run) => {
      const worker = await run.startWorker('intake');
      const client = createClient(worker.url, { key: KEY, maxSockets: inFlight });
      try {
        const body = (i) =>
          jobsPerRequest === 1
            ? { handler: 'sink', payload: { i } }
            : { jobs: Array.from({ length: jobsPerRequest }, (_, j) => ({ handler: 'sink', payload: { i: i * jobsPerRequest + j } })) };
        const requests = Math.ceil(n / jobsPerRequest);
        // Warm-up (JIT, connections, first pages of the file), not timed: 1% of the requests, at least 2 rounds.
        const warm = Math.max(inFlight * 2, Math.ceil(requests / 100));
        await closedLoop(warm, inFlight, (i) => client.post('/v1/jobs', body(i)));
        const { ms, rtts } = await closedLoop(requests, inFlight, (i) => client.post('/v1/jobs', body(i)));
        const c = await counts(client);
        const expected = (warm + requests) * jobsPerRequest;
        if (c.queued + c.running !== expected) throw new Error(`store holds ${JSON.stringify(c)}; expected ${expected} accepted jobs`);
        return {
          workerPid: worker.pid,
          jobs: requests * jobsPerRequest,
          requests,
          inFlight,
          jobsPerRequest,
          warmupRequests: warm,
          seconds: ms / 1000,
          jobsPerSec: (requests * jobsPerRequest) / (ms / 1000),
          requestMs: distribution(rtts),
        };
      } finally {
        client.close();
      }
    });
  }

  return {
    name: engine.name,
    settings: engine.settings,

    async setup() {
      if (!existsSync(join(DIST, 'node/start-node.js'))) throw new Error('dist/ is missing: run `npm run build` first');
    },

    /** `n` single-job POST /v1/jobs, `inFlight` concurrent requests. */
    enqueueSingle(n, inFlight) {
      return intakeRun('single', n, inFlight, 1);
    },

    /**
     * What the SDK costs over a lean `node:http` client, same node, same run:
     * `n` single enqueues `inFlight` at a time through each (the SDK coalesces
     * the calls of one tick into a batch request, the plain client cannot),
     * then `max(500, n / 10)` one at a time for the client's CPU per call (no
     * coalescing possible: the SDK's own overhead). Runs alternate
     * plain, SDK, SDK, plain so a drift in machine load hits both alike.
     */
    sdkVsPlain(n, inFlight) {
      return withRun('sdk', async (run) => {
        const worker = await run.startWorker('intake');
        const { createClient: createSdk } = await import(pathToFileURL(join(DIST, 'sdk/client.js')).href);
        const plain = createClient(worker.url, { key: KEY, maxSockets: inFlight });
        const sdk = createSdk({ url: worker.url, key: KEY });
        let i = 0;
        const clients = {
          plain: () => plain.post('/v1/jobs', { handler: 'sink', payload: { i: i++ } }),
          sdk: () => sdk.enqueue({ handler: 'sink', payload: { i: i++ } }),
        };
        const totals = { plain: { 16: { calls: 0, ms: 0 }, 1: { calls: 0, cpuUs: 0 } }, sdk: { 16: { calls: 0, ms: 0 }, 1: { calls: 0, cpuUs: 0 } } };
        const round = async (name, count, flight) => {
          const cpu = process.cpuUsage();
          const { ms } = await closedLoop(count, flight, clients[name]);
          const used = process.cpuUsage(cpu);
          const t = totals[name][flight === 1 ? 1 : 16];
          t.calls += count;
          if (flight === 1) t.cpuUs += used.user + used.system;
          else t.ms += ms;
        };
        try {
          // Warm-up (JIT, connections), not counted.
          for (const name of ['plain', 'sdk']) {
            await closedLoop(Math.max(inFlight * 4, Math.ceil(n / 50)), inFlight, clients[name]);
            await closedLoop(200, 1, clients[name]);
          }
          for (const k in totals) for (const f of [1, 16]) totals[k][f] = f === 1 ? { calls: 0, cpuUs: 0 } : { calls: 0, ms: 0 };
          const half = Math.ceil(n / 2);
          const single = Math.max(500, Math.ceil(n / 10));
          for (const name of ['plain', 'sdk', 'sdk', 'plain']) {
            await round(name, half, inFlight);
            await round(name, single, 1);
          }
          const rate = (name) => totals[name][16].calls / (totals[name][16].ms / 1000);
          const cpuUs = (name) => totals[name][1].cpuUs / totals[name][1].calls;
          return {
            jobs: totals.sdk[16].calls + totals.plain[16].calls,
            inFlight,
            workerPid: worker.pid,
            sdkJobsPerSec: rate('sdk'),
            plainJobsPerSec: rate('plain'),
            rateRatio: rate('sdk') / rate('plain'),
            sdkCpuUsPerCall: cpuUs('sdk'),
            plainCpuUsPerCall: cpuUs('plain'),
            cpuRatio: cpuUs('sdk') / cpuUs('plain'),
          };
        } finally {
          plain.close();
        }
      });
    },

    /** `n` jobs as POST /v1/jobs {jobs: [...batch]}, one request in flight. */
    enqueueBulk(n, batch) {
      return intakeRun('bulk', n, 1, batch);
    },

    /**
     * `n` pre-enqueued no-op jobs drained by one worker process at handler concurrency `concurrency`,
     * the handler run `inline` (default) or with `isolation: 'thread'` (`concurrency` threads).
     * `workerOnly`: the worker runs `drover start --worker-only` (no HTTP API, for its memory); the
     * committed outcomes are then not checked through the API, only the handler's own count. `lowMemory`:
     * `drover start --low-memory` with NODE_OPTIONS=--max-semi-space-size=4 (docs/operations.md); `'option'`:
     * the option alone (the young generation capped at run time, src/cli/low-memory.ts). `seriesMs`: the
     * result's `series` holds the runs per `seriesMs` bucket from the first run, `seriesCpuUs` the worker's CPU at each
     * (inline only; bench/lib/run-series.mjs).
     */
    drain(n, concurrency, isolation = 'inline', { on = false, tenants = 0, priorities = 0, caps = null, workerOnly = false, lowMemory = false, seriesMs = 0 } = {}) {
      return withRun(`drain${concurrency}${isolation === 'thread' ? 't' : ''}${on ? 'f' : ''}${caps ? 'c' : ''}`, async (run) => {
        const seeded = await seed(run.storeUrl, n, run.runEnv, { on, tenants, priorities });
        const spawnedAt = now();
        const env = {
          BENCH_EXPECT: String(n),
          BENCH_CONCURRENCY: String(concurrency),
          BENCH_ISOLATION: isolation,
          ...(on ? { BENCH_QUEUE_FLOW: '1' } : {}),
          ...(caps ? { BENCH_CAPS: JSON.stringify(caps) } : {}),
          ...(seriesMs ? { BENCH_SERIES_MS: String(seriesMs) } : {}),
          ...(lowMemory === true ? { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --max-semi-space-size=4`.trim() } : {}),
        };
        const args = [...(workerOnly ? ['--worker-only'] : []), ...(lowMemory ? ['--low-memory'] : [])];
        const worker = await run.startWorker('drain', env, { waitReady: false, args });
        const done = await worker.waitForLine(/^bench:drain (.*)$/, Math.max(60_000, n * 5), 'the drain report');
        // Sample the worker right away: peak RSS so far covers startup and the whole drain.
        const memory = memoryOf(worker.pid);
        const cpuSeconds = cpuSecondsOf(worker.pid);
        const { count, first, last, monoFirst, monoLast, series, seriesCpuUs } = JSON.parse(done.match[1]);
        await worker.ready;
        // The handler saw every job; confirm the outcomes are committed.
        const client = createClient(worker.url, { key: KEY, maxSockets: 1 });
        let committedAt = NaN;
        try {
          for (let c = workerOnly ? { succeeded: n } : await counts(client); c.succeeded !== n; c = await counts(client)) {
            if (now() - last > 30_000) throw new Error(`only ${c.succeeded} of ${n} jobs committed as succeeded 30 s after the last run`);
            await sleep(2);
          }
          if (!workerOnly) committedAt = now();
        } finally {
          client.close();
        }
        const ms = last - first;
        return {
          jobs: count,
          concurrency,
          isolation,
          workerOnly,
          lowMemory,
          seconds: ms / 1000,
          jobsPerSec: (count - 1) / (ms / 1000),
          firstRunAfterSpawnMs: first - spawnedAt,
          lastRunToCommittedMs: committedAt - last,
          peakRssMiB: memory.peakRssMiB,
          workerCpuSeconds: cpuSeconds,
          seedSeconds: seeded.seconds,
          storeSettings: seeded.settings,
          workerPid: worker.pid,
          // Thread mode reports no monotonic window (its runs are timed in the handler threads).
          profileWindowUs: monoFirst ? [monoFirst, monoLast] : null,
          ...(series ? { series, seriesCpuUs, firstRunAt: first } : {}),
        };
      });
    },

    /**
     * What `isolation: 'thread'` costs: the same drain (`n` no-op jobs, concurrency
     * `concurrency`, a fresh store each) run inline and then in threads; `ratio`
     * is thread jobs/s over inline jobs/s.
     */
    async isolation(n, concurrency) {
      const inline = await this.drain(n, concurrency, 'inline');
      const thread = await this.drain(n, concurrency, 'thread');
      return { jobs: n, concurrency, inlineJobsPerSec: inline.jobsPerSec, threadJobsPerSec: thread.jobsPerSec, ratio: thread.jobsPerSec / inline.jobsPerSec, inline, thread };
    },

    /**
     * What flow control costs: `n` no-op jobs of `tenants` tenants and
     * `priorities` priorities (round-robin), drained at `concurrency`, first
     * under strict priority, then with queue weights and tenant fairness on
     * (FLOW_QUEUE), a fresh store each. `ratio`: flow jobs/s over strict.
     */
    async flow(n, { tenants, priorities, concurrency }) {
      const plain = await this.drain(n, concurrency, 'inline', { on: false, tenants, priorities });
      const flow = await this.drain(n, concurrency, 'inline', { on: true, tenants, priorities });
      return {
        jobs: n,
        tenants,
        priorities,
        concurrency,
        plainJobsPerSec: plain.jobsPerSec,
        flowJobsPerSec: flow.jobsPerSec,
        ratio: flow.jobsPerSec / plain.jobsPerSec,
        enqueueTimeRatio: flow.seedSeconds / plain.seedSeconds,
        plain,
        flow,
      };
    },

    /**
     * What tenant caps cost (issue 20): the same drain of `n` no-op jobs spread
     * over `tenants` tenants, at handler concurrency `concurrency`, a fresh
     * store each: caps off, a cap that never binds (each tenant may run every
     * job the handler can), and a binding cap (`tenants × bind` below
     * `concurrency`). Run off, on, binding, off so a drift in machine load hits
     * both sides; `off` is the better of the two off runs.
     */
    async caps(n, concurrency, tenants = 10, bind = 2) {
      const opts = (cap) => ({ tenants, caps: cap === null ? null : { tenants: { maxActiveLeases: cap } } });
      const off1 = await this.drain(n, concurrency, 'inline', opts(null));
      const loose = await this.drain(n, concurrency, 'inline', opts(concurrency * 10));
      const binding = await this.drain(n, concurrency, 'inline', opts(bind));
      const off2 = await this.drain(n, concurrency, 'inline', opts(null));
      const offRate = Math.max(off1.jobsPerSec, off2.jobsPerSec);
      return {
        jobs: n,
        concurrency,
        tenants,
        bindingCap: bind,
        offJobsPerSec: offRate,
        looseJobsPerSec: loose.jobsPerSec,
        bindingJobsPerSec: binding.jobsPerSec,
        looseRatio: loose.jobsPerSec / offRate,
        bindingRatio: binding.jobsPerSec / offRate,
        runs: { off1, loose, binding, off2 },
      };
    },

    /**
     * Cost as the work grows (issue 24): `backlog` queued no-op jobs, of which one worker process at
     * concurrency `concurrency` drains the first `n` (BENCH_EXPECT); jobs/s from the first run to the
     * n-th, as in drain(). The first SEED_CHUNK jobs go through the runtime's bulk enqueue, the rest
     * are copies of them made by one INSERT … SELECT in the engine's SQL (`engine.copyJobs`), which
     * keeps a 1,000,000-job setup to seconds. With `plan`, the engine's lease statement is EXPLAINed
     * against the full table first (`engine.leasePlan`), to show no scan grows with the backlog.
     */
    drainBacklog(n, backlog, concurrency, { plan = false } = {}) {
      if (backlog % SEED_CHUNK !== 0 || backlog < n) throw new Error(`backlog ${backlog} must be a multiple of ${SEED_CHUNK} and at least the ${n} jobs drained`);
      return withRun(`backlog${backlog}`, async (run) => {
        const started = now();
        await seed(run.storeUrl, SEED_CHUNK, run.runEnv);
        if (backlog > SEED_CHUNK) await engine.copyJobs(run, backlog / SEED_CHUNK - 1);
        const seedSeconds = (now() - started) / 1000;
        const leasePlan = plan ? await engine.leasePlan(run) : null;
        const env = { BENCH_EXPECT: String(n), BENCH_CONCURRENCY: String(concurrency) };
        const worker = await run.startWorker('drain', env, { waitReady: false });
        const done = await worker.waitForLine(/^bench:drain (.*)$/, Math.max(120_000, n * 5), 'the drain report');
        const memory = memoryOf(worker.pid);
        const cpuSeconds = cpuSecondsOf(worker.pid);
        const { count, first, last } = JSON.parse(done.match[1]);
        await worker.ready;
        return {
          backlog,
          jobs: count,
          concurrency,
          seconds: (last - first) / 1000,
          jobsPerSec: (count - 1) / ((last - first) / 1000),
          peakRssMiB: memory.peakRssMiB,
          workerCpuSeconds: cpuSeconds,
          seedSeconds,
          leasePlan,
          workerPid: worker.pid,
        };
      });
    },

    /**
     * `n` pre-enqueued no-op jobs drained by `processes` worker processes, each at handler concurrency
     * `concurrency`; jobs/s from the first run in any process to the last, once all are committed.
     */
    drainProcesses(n, concurrency, processes) {
      return withRun(`drainx${processes}`, async (run) => {
        await seed(run.storeUrl, n, run.runEnv);
        const workers = await Promise.all(
          Array.from({ length: processes }, () => run.startWorker('drain', { BENCH_EXPECT: '0', BENCH_CONCURRENCY: String(concurrency) })),
        );
        const client = createClient(workers[0].url, { key: KEY, maxSockets: 1 });
        const started = now();
        try {
          for (let c = await counts(client); c.succeeded !== n; c = await counts(client)) {
            if (now() - started > Math.max(120_000, n * 10)) throw new Error(`only ${c.succeeded} of ${n} jobs succeeded`);
            await sleep(5);
          }
        } finally {
          client.close();
        }
        const peakRssMiB = workers.map((w) => memoryOf(w.pid).peakRssMiB);
        await Promise.all(workers.map((w) => w.stop(10_000)));
        const shares = await Promise.all(workers.map((w) => w.waitForLine(/^bench:drain (.*)$/, 1000, 'its drain share').then((l) => JSON.parse(l.match[1]))));
        const ran = shares.filter((s) => s.count > 0);
        const first = Math.min(...ran.map((s) => s.first));
        const last = Math.max(...ran.map((s) => s.last));
        return { jobs: n, processes, concurrency, perProcess: shares.map((s) => s.count), seconds: (last - first) / 1000, jobsPerSec: (n - 1) / ((last - first) / 1000), peakRssMiB };
      });
    },

    /**
     * Open-loop: one enqueue every 1000/rate ms for `seconds`, into an idle worker; enqueue→handler-start
     * latency. Enqueued through the shipped SDK (`drover/client`), as the peers enqueue through theirs;
     * BENCH_LATENCY_CLIENT=plain uses the bench's lean node:http client instead.
     */
    latency(rate, seconds) {
      return withRun('latency', async (run) => {
        const total = Math.round(rate * seconds);
        // BENCH_STAGES=1: each job's path stamped stage by stage (bench/lib/stage-breakdown.mjs).
        const staged = process.env.BENCH_STAGES === '1';
        // BENCH_WORKER_NODE_OPTIONS: node flags for the worker only (a V8 GC setting tried against the default).
        const workerFlags = [process.env.NODE_OPTIONS, process.env.BENCH_WORKER_NODE_OPTIONS, staged ? `--import ${STAGE_TRACE}` : ''].filter(Boolean).join(' ');
        const stagesEnv = workerFlags ? { NODE_OPTIONS: workerFlags } : {};
        const worker = await run.startWorker('latency', { BENCH_EXPECT: String(total), ...stagesEnv });
        const sends = staged ? watchClientSends() : null;
        const client = createClient(worker.url, { key: KEY, maxSockets: 16 });
        const viaSdk = process.env.BENCH_LATENCY_CLIENT !== 'plain';
        const sdk = viaSdk ? (await import(pathToFileURL(join(DIST, 'sdk/client.js')).href)).createClient({ url: worker.url, key: KEY }) : null;
        const enqueue = (body) => (sdk ? sdk.enqueue(body) : client.post('/v1/jobs', body));
        try {
          const interval = 1000 / rate;
          const pace = async (count, payload) => {
            const rtts = [];
            const pending = [];
            let maxLagMs = 0;
            const t0 = now() + 2;
            for (let i = 0; i < count; i++) {
              const due = t0 + i * interval;
              const wait = due - now();
              if (wait > 0.5) await sleep(wait);
              const sent = now();
              maxLagMs = Math.max(maxLagMs, sent - due);
              pending.push(enqueue({ handler: 'noop', payload: payload(sent) }).then(() => rtts.push(now() - sent)));
            }
            const sendSeconds = (now() - t0) / 1000;
            await Promise.all(pending);
            return { rtts, maxLagMs, sendSeconds };
          };
          // Warm-up: one second at the same rate, not recorded by the handler; then let the worker go idle.
          await pace(Math.min(rate, total), (sent) => ({ sent, warm: true }));
          await sleep(500);
          const paced = await pace(total, (sent) => ({ sent }));
          const report = await worker.waitForLine(/^bench:latency (.*)$/, 30_000, 'the latency report');
          const { samples, sentAt, monoFirst, monoLast, stages } = JSON.parse(report.match[1]);
          const stageBreakdown = stages && sends ? breakdown(stages, sentAt, sends.written) : undefined;
          if (stageBreakdown) process.stderr.write(`${formatBreakdown(stageBreakdown)}\n`);
          const t0 = Math.min(...sentAt);
          const slowest = samples
            .map((ms, i) => ({ atS: Math.round((sentAt[i] - t0) / 10) / 100, ms }))
            .sort((a, b) => b.ms - a.ms)
            .slice(0, 10);
          return {
            rate,
            seconds,
            jobs: total,
            achievedRate: total / paced.sendSeconds,
            client: viaSdk ? 'sdk' : 'plain node:http',
            maxSendLagMs: paced.maxLagMs,
            latencyMs: distribution(samples),
            enqueueRequestMs: distribution(paced.rtts),
            slowest,
            workerPid: worker.pid,
            profileWindowUs: [monoFirst, monoLast],
            ...(stageBreakdown ? { stages: stageBreakdown } : {}),
          };
        } finally {
          sends?.stop();
          client.close();
        }
      });
    },

    /**
     * Durable steps, one job at a time into an idle node (docs/benchmarks.md, "Durable steps"):
     * invoke→result of a plain job, a 3-step job and a job of `stepsPerJob` no-op ctx.step.run
     * steps (POST /v1/jobs sent → `succeeded` on the node's event stream); ms per step, measured
     * in the handler and as (n-step job − plain job) / n; and resume→running: a job suspended in
     * a wait is resumed (POST /v1/interrupts/:id/resume, or the matching POST /v1/events where
     * the node has no interrupts route) → `running` on the stream. Last, ms per step of the same
     * steps in a remote worker (runWorker, drover-remote-steps.mjs).
     */
    durable({ jobs, stepsPerJob, resumes }) {
      return withRun('durable', async (run) => {
        const worker = await run.startWorker('durable');
        const client = createClient(worker.url, { key: KEY, maxSockets: 2 });
        const states = await watchJobStates(worker.url, { key: KEY, handlers: ['plain', 'steps', 'three', 'waiter', 'rsteps'] });
        const enqueue = async (handler, payload) => JSON.parse((await client.post('/v1/jobs', { handler, payload })).text).id;
        const invoke = async (handler, payload = {}) => {
          const sent = now();
          const id = await enqueue(handler, payload);
          return { id, ms: (await states.waitFor(id, 'succeeded', { after: sent })) - sent };
        };
        const stepReport = (id) => (line) => {
          const m = /^bench:steps (.*)$/.exec(line);
          const r = m && JSON.parse(m[1]);
          return r && r.job === id ? r : null;
        };
        try {
          // Warm-up (JIT, connections, first pages of the store), not timed.
          for (let i = 0; i < 10; i++) {
            await invoke('plain');
            await invoke('three');
          }
          await invoke('steps', { n: stepsPerJob });
          const plain = [];
          const three = [];
          const stepped = [];
          const perStepInHandler = [];
          for (let i = 0; i < jobs; i++) {
            plain.push((await invoke('plain')).ms);
            three.push((await invoke('three')).ms);
            const s = await invoke('steps', { n: stepsPerJob });
            stepped.push(s.ms);
            perStepInHandler.push((await worker.waitForLine(stepReport(s.id), 10_000, 'the steps report')).match.ms / stepsPerJob);
          }

          const viaInterrupts = (await client.request('GET', '/v1/interrupts?state=pending&limit=1')).status === 200;
          const resume = [];
          for (let i = 0; i < resumes + 2; i++) {
            const id = await enqueue('waiter', { interrupt: viaInterrupts });
            const wait = await suspendedWait(client, id, viaInterrupts);
            const sent = now();
            if (viaInterrupts) await client.post(`/v1/interrupts/${encodeURIComponent(wait)}/resume`, { input: { go: true } });
            else await client.post('/v1/events', { name: 'bench.go', data: { job: id } });
            const running = (await states.waitFor(id, 'running', { after: sent })) - sent;
            await states.waitFor(id, 'succeeded', { after: sent });
            // The first two are warm-up.
            if (i >= 2) resume.push(running);
          }
          // The same steps in a remote worker (runWorker over HTTP): what a step costs it.
          const remote = spawnTracked(process.execPath, [REMOTE_STEPS], { cwd: run.dir, env: { ...process.env, BENCH_URL: worker.url, BENCH_KEY: KEY }, label: 'remote step worker' });
          const remotePerStep = [];
          try {
            await remote.waitForLine(/^bench:ready /, 30_000, 'its ready line');
            const remoteReport = (id) => (line) => {
              const m = /^bench:rsteps (.*)$/.exec(line);
              const r = m && JSON.parse(m[1]);
              return r && r.job === id ? r : null;
            };
            for (let i = 0; i < jobs + 2; i++) {
              const { id } = await invoke('rsteps', { n: stepsPerJob });
              const { ms } = (await remote.waitForLine(remoteReport(id), 10_000, 'the remote steps report')).match;
              // The first two are warm-up.
              if (i >= 2) remotePerStep.push(ms / stepsPerJob);
            }
          } finally {
            await remote.stop(5_000);
          }

          const plainMs = distribution(plain);
          const steppedMs = distribution(stepped);
          return {
            jobs,
            stepsPerJob,
            plainInvokeMs: plainMs,
            threeStepInvokeMs: distribution(three),
            stepJobInvokeMs: steppedMs,
            msPerStep: distribution(perStepInHandler),
            msPerStepEndToEnd: Math.max(0, steppedMs.p50 - plainMs.p50) / stepsPerJob,
            remoteMsPerStep: distribution(remotePerStep),
            resumedBy: viaInterrupts ? 'POST /v1/interrupts/:id/resume' : 'POST /v1/events (matching event)',
            resumeToRunningMs: distribution(resume),
            workerPid: worker.pid,
          };
        } finally {
          states.close();
          client.close();
        }
      });
    },

    /** SIGKILL a worker while a job runs; restart it; seconds from the kill until the job runs again. */
    crashRecovery() {
      return withRun('crash', async (run) => {
        let worker = await run.startWorker('crash');
        const client = createClient(worker.url, { key: KEY, maxSockets: 1 });
        let job;
        try {
          job = JSON.parse((await client.post('/v1/jobs', { handler: 'block', payload: {} })).text);
        } finally {
          client.close();
        }
        const startedLine = (line) => {
          const m = /^bench:started (.*)$/.exec(line);
          const r = m && JSON.parse(m[1]);
          return r && r.job === job.id ? r : null;
        };
        const first = (await worker.waitForLine(startedLine, 10_000, `job ${job.id} starting`)).match;
        const killedAt = now();
        worker.kill('SIGKILL');
        await worker.exited;
        worker = await run.startWorker('crash', {}, { waitReady: false });
        const again = (await worker.waitForLine(startedLine, 60_000, `job ${job.id} starting again`)).match;
        await worker.ready;
        return {
          seconds: (again.at - killedAt) / 1000,
          killToReadyLineSeconds: (worker.readyAt - killedAt) / 1000,
          spawnToJobStartSeconds: (again.at - worker.spawnedAt) / 1000,
          attemptBefore: first.attempt,
          attemptAfter: again.attempt,
        };
      });
    },

    /** Every run already stopped its workers and deleted its store; nothing is shared between runs. */
    async teardown() {},
  };
}
