/**
 * Per-job cost of the observability hooks, measured in isolation so a busy
 * machine does not drown it (not a test; `npx tsx test/obs/overhead-bench.ts`):
 * the lifecycle events one local job emits (enqueued, start, succeeded) with
 * the metrics listeners subscribed versus none, and one store call through the
 * timing wrapper versus the bare engine method.
 */
import { Lifecycle } from '../../src/runtime/lifecycle.js';
import { observeJobs } from '../../src/obs/job-metrics.js';
import { DroverMetrics } from '../../src/obs/metrics.js';
import { instrumentStore } from '../../src/store/instrumented.js';
import type { StorageEngine } from '../../src/store/engine.js';
import type { JobRow, LeasedJob } from '../../src/core/types.js';

const N = 1_000_000;
const job = { id: 'j', handler: 'h', queue: 'default', attempts: 1, traceparent: null, runAt: 0 } as unknown as LeasedJob;

function perJob(lifecycle: Lifecycle): number {
  const started = performance.now();
  for (let i = 0; i < N; i++) {
    lifecycle.emit('job:enqueued', { job: job as JobRow });
    lifecycle.emit('job:start', { job, waitMs: 3 });
    lifecycle.emit('job:succeeded', { job, durationMs: 1 });
  }
  return ((performance.now() - started) * 1e6) / N;
}

async function perCall(complete: (id: string) => Promise<unknown>): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < N; i++) await complete('j');
  return ((performance.now() - started) * 1e6) / N;
}

const bare = new Lifecycle();
const observed = new Lifecycle();
const metrics = new DroverMetrics({ handlers: [{ name: 'h', queue: 'default' }], queues: ['default'], engine: 'sqlite' });
observeJobs(observed, metrics);

const result = { ok: true } as const;
const engine = { capabilities: { engine: 'sqlite' }, complete: async () => result } as unknown as StorageEngine;
const wrapped = instrumentStore(engine, { timer: (op) => metrics.storeTimer(op) });

for (let round = 0; round < 3; round++) {
  const a = perJob(bare);
  const b = perJob(observed);
  const c = await perCall((id) => engine.complete(id, 't', null));
  const d = await perCall((id) => wrapped.complete(id, 't', null));
  process.stdout.write(
    `lifecycle per job: ${a.toFixed(0)} ns bare, ${b.toFixed(0)} ns with metrics (+${(b - a).toFixed(0)} ns); ` +
      `store call: ${c.toFixed(0)} ns bare, ${d.toFixed(0)} ns wrapped (+${(d - c).toFixed(0)} ns)\n`,
  );
}
