/**
 * The dispatcher's own CPU per job, without a database (not a test; run with
 * `npx tsx bench/dispatch-cpu.ts [jobs] [concurrency] [runs]`; against
 * a build, DROVER_SRC=../dist, or an absolute path such as
 * DROVER_SRC=/work/main/dist for an A/B). A store whose calls settle on the next `setImmediate`,
 * as the engines' group commits do, wrapped in the timing wrapper; the
 * runtime's observers (logs at warn, metrics, the SSE hub, supervision,
 * tracing off) subscribed as a node subscribes them. Reports this process's
 * CPU time per job (user + system) for each run and their median.
 */
import { Writable } from 'node:stream';

const src = process.env.DROVER_SRC ?? '../src';
const { resolveConfig } = await import(`${src}/core/config.js`);
const { createLogger } = await import(`${src}/obs/logger.js`);
const { DroverMetrics } = await import(`${src}/obs/metrics.js`);
const { Tracing } = await import(`${src}/obs/tracing.js`);
const { Dispatcher } = await import(`${src}/runtime/dispatcher.js`);
const { Lifecycle } = await import(`${src}/runtime/lifecycle.js`);
const { observeLifecycle } = await import(`${src}/runtime/observers.js`);
const { Supervision } = await import(`${src}/runtime/supervision.js`);
const { instrumentStore } = await import(`${src}/store/instrumented.js`);

const jobs = Number(process.argv[2] ?? 200_000);
const concurrency = Number(process.argv[3] ?? 10);
const runs = Number(process.argv[4] ?? 5);

/** Calls settle together on the next check phase, as a group commit does. */
class FakeStore {
  readonly capabilities = { engine: 'postgres', multiNode: false };
  #pending: Array<() => void> = [];
  #scheduled = false;
  #next = 0;
  #left: number;
  constructor(total: number) {
    this.#left = total;
  }
  #later<T>(value: T): Promise<T> {
    return new Promise((resolve) => {
      this.#pending.push(() => resolve(value));
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => {
          this.#scheduled = false;
          const due = this.#pending;
          this.#pending = [];
          for (const settle of due) settle();
        });
      }
    });
  }
  lease(request: { limit: number; workerId: string }): Promise<unknown[]> {
    const n = Math.min(request.limit, this.#left);
    this.#left -= n;
    const now = Date.now();
    const out = [];
    for (let i = 0; i < n; i++) {
      const id = String(++this.#next);
      out.push({
        id, handler: 'noop', queue: 'default', state: 'running', payload: { i }, eventId: null, priority: 0, runAt: now - 5, attempts: 1, maxAttempts: 3,
        crashes: 0, idempotencyKey: null, concurrencyKey: null, concurrencyLimit: null, leaseToken: `t${id}`, leaseExpiresAt: now + 60_000, leaseKeyId: null,
        workerId: request.workerId, lastError: null, deadReason: null, result: null, traceparent: null, tenant: null, createdAt: now, updatedAt: now, finishedAt: null, event: null,
      });
    }
    return this.#later(out);
  }
  start(): Promise<{ ok: true }> {
    return this.#later({ ok: true });
  }
  complete(): Promise<{ ok: true }> {
    return this.#later({ ok: true });
  }
  fail(): Promise<{ ok: true }> {
    return this.#later({ ok: true });
  }
  release(): Promise<{ ok: true }> {
    return this.#later({ ok: true });
  }
  heartbeat(): Promise<{ ok: true }> {
    return this.#later({ ok: true });
  }
  async getMeta(): Promise<string | null> {
    return null;
  }
  async updateMeta(): Promise<void> {}
}

async function once(): Promise<number> {
  const config = resolveConfig({ handlers: [{ name: 'noop', concurrency, run() {} }], databaseUrl: ':memory:' }, {}, {});
  const metrics = new DroverMetrics({ handlers: [...config.handlers.values()].map((h: { name: string; queue: string }) => ({ name: h.name, queue: h.queue })), queues: ['default'], engine: 'postgres' });
  const store = instrumentStore(new FakeStore(jobs) as never, { timer: (op: string) => metrics.storeTimer(op) });
  const logger = createLogger({ level: 'warn', destination: new Writable({ write: (_c, _e, done) => done() }) });
  const lifecycle = new Lifecycle();
  const clock = Date.now;
  const supervision = new Supervision({ store, handlers: config.handlers, lifecycle, clock, wake: () => dispatcher.wake() });
  const observers = observeLifecycle({ lifecycle, logger, tracing: Tracing.disabled(), metrics, runtime: { supervision, config, clock }, stream: { ...config.stream, clock } });
  await supervision.start();
  const paused = new Set<string>();
  const dispatcher = new Dispatcher({
    store, handlers: config.handlers, lifecycle, logger, workerId: 'w', clock, onRetryScheduled: () => undefined,
    isHandlerPaused: (name: string) => paused.has(name) || supervision.slotLimit(name) === 0,
    slotLimit: (name: string) => supervision.slotLimit(name),
    pausedQueues: () => [...paused],
    attempts: observers.attempts,
    admit: (_job: unknown, handler: { rateLimit?: unknown }) => (handler.rateLimit ? 0 : null),
    startRoom: () => undefined,
    steps: { store, lifecycle, limits: config.durable, clock, onWakeAt: () => undefined },
  });
  let done = 0;
  let finished!: () => void;
  const all = new Promise<void>((resolve) => (finished = resolve));
  lifecycle.on('job:succeeded', () => {
    if (++done === jobs) finished();
  });
  const cpu = process.cpuUsage();
  dispatcher.start();
  await all;
  const used = process.cpuUsage(cpu);
  dispatcher.stopLeasing();
  await dispatcher.whenIdle();
  await supervision.stop();
  return (used.user + used.system) / jobs;
}

const results: number[] = [];
for (let r = 0; r < runs; r++) results.push(await once());
const median = [...results].sort((a, b) => a - b)[Math.floor(results.length / 2)]!;
process.stdout.write(`dispatch ${jobs} no-op jobs, concurrency ${concurrency}: CPU per job ${results.map((r) => r.toFixed(2)).join(', ')} µs (median ${median.toFixed(2)})\n`);
