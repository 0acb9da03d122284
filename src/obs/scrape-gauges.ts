/**
 * Gauges computed when Prometheus scrapes, never on the job path: queue depth
 * and oldest job age from `store.queueStats()` (one grouped read, cached for
 * a second so several scrapers or a fast scrape interval cost one query), jobs
 * running in this node's dispatcher, and the store engine's own counters
 * (SQLite group commit, PostgreSQL pool) when the engine exposes them.
 */
import { Gauge } from 'prom-client';
import { toError } from '../core/errors.js';
import type { QueueStats } from '../store/engine.js';
import { DEPTH_STATES, type DroverMetrics } from './metrics.js';
import { CounterFamily } from './series.js';

export interface ScrapeSources {
  queueStats(): Promise<QueueStats[]>;
  /** Jobs running in this node's in-process workers. */
  running(): Iterable<{ job: { queue: string } }>;
  /** Queues to report even when the store has no job in them. */
  queues: Iterable<string>;
  clock(): number;
  onError(error: Error): void;
  /** How long a `queueStats()` (and `pendingInterrupts()`) answer is reused. Default 1 s. */
  cacheMs?: number;
  /** Pending interrupts of durable jobs (`store.pendingInterrupts()`): how many, and when the oldest was created. */
  pendingInterrupts?: () => Promise<{ count: number; oldestCreatedAt: number | null }>;
  /** Since when full queues have refused intake (`runtime.refusals`), with each queue's maxDepth. */
  refusals?: {
    seconds(queue: string, fill?: { depth: number; maxDepth: number }): number;
    queues(): Iterable<string>;
  };
  maxDepth?: (queue: string) => number | undefined;
}

/**
 * Add the on-scrape collectors to `metrics`.
 *
 * @example
 * observeOnScrape(metrics, { queueStats: () => store.queueStats(), running: () => dispatcher.running.values(), queues: config.queues.keys(), clock: Date.now, onError });
 */
export function observeOnScrape(metrics: DroverMetrics, sources: ScrapeSources): void {
  const queues = [...sources.queues];
  const cacheMs = sources.cacheMs ?? 1_000;
  // Keep the last values and still answer the scrape when a read fails: a store blip must
  // not hide every other metric. Readiness reports the store itself.
  const stats = cachedRead(() => sources.queueStats(), sources, cacheMs);

  // Both gauges read the same cached answer; the registry collects them concurrently.
  setCollect(metrics.queueDepth, async () => {
    const rows = await stats();
    if (!rows) return;
    const seen = new Set(queues);
    for (const row of rows) seen.add(row.queue);
    const byQueue = new Map(rows.map((r) => [r.queue, r]));
    for (const queue of seen) {
      const row = byQueue.get(queue);
      for (const state of DEPTH_STATES) metrics.queueDepth.set({ queue, state }, row?.counts[state] ?? 0);
    }
  });
  setCollect(metrics.queueOldestAge, async () => {
    const rows = await stats();
    if (!rows) return;
    const now = sources.clock();
    const byQueue = new Map(rows.map((r) => [r.queue, r]));
    for (const queue of new Set([...queues, ...byQueue.keys()])) {
      const oldest = byQueue.get(queue)?.oldestQueuedAt ?? null;
      metrics.queueOldestAge.set({ queue }, oldest === null ? 0 : Math.max(0, (now - oldest) / 1000));
    }
  });
  const refusals = sources.refusals;
  if (refusals) {
    setCollect(metrics.queueBackpressure, async () => {
      const rows = await stats();
      const byQueue = new Map((rows ?? []).map((r) => [r.queue, r]));
      for (const queue of new Set([...queues, ...refusals.queues()])) {
        const row = byQueue.get(queue);
        const depth = row ? DEPTH_STATES.reduce((n, state) => n + row.counts[state], 0) : 0;
        const maxDepth = sources.maxDepth?.(queue);
        // Without a fresh read (rows null), keep counting: a store blip is not room in the queue.
        const fill = rows && maxDepth !== undefined ? { depth, maxDepth } : undefined;
        metrics.queueBackpressure.set({ queue }, refusals.seconds(queue, fill));
      }
    });
  }
  const interrupts = cachedRead(sources.pendingInterrupts, sources, cacheMs);
  setCollect(metrics.interruptsPending, async () => {
    const pending = await interrupts();
    if (pending) metrics.interruptsPending.set(pending.count);
  });
  setCollect(metrics.interruptOldestAge, async () => {
    const pending = await interrupts();
    if (!pending) return;
    metrics.interruptOldestAge.set(pending.oldestCreatedAt === null ? 0 : Math.max(0, (sources.clock() - pending.oldestCreatedAt) / 1000));
  });
  setCollect(metrics.jobsRunning, () => {
    const counts = new Map<string, number>(queues.map((q) => [q, 0]));
    for (const { job } of sources.running()) counts.set(job.queue, (counts.get(job.queue) ?? 0) + 1);
    for (const [queue, n] of counts) metrics.jobsRunning.set({ queue }, n);
  });
}

/** A read shared by the gauges of one scrape (cached `cacheMs`); null on failure, reported, so the gauges keep their last values. */
function cachedRead<T>(read: (() => Promise<T>) | undefined, sources: Pick<ScrapeSources, 'clock' | 'onError'>, cacheMs: number): () => Promise<T | null> {
  let cached: { at: number; value: Promise<T | null> } | null = null;
  return () => {
    if (!read) return Promise.resolve(null);
    const now = sources.clock();
    if (cached && now - cached.at < cacheMs) return cached.value;
    const value = read().catch((error: unknown) => {
      sources.onError(toError(error));
      return null;
    });
    cached = { at: now, value };
    return value;
  };
}

/** SQLite's group commit counters (`SqliteEngine.stats`). */
export interface GroupCommitSource {
  readonly stats: { readonly batches: number; readonly ops: number; readonly lastBatchSize: number };
}

/** What an engine that can run out of disk space exposes (`SqliteEngine.space`). */
export interface StoreSpaceSource {
  readonly space: { readonly full: boolean; readonly fullErrors: number; readonly retrying: number };
}

/**
 * What an engine with a connection pool may expose for metrics (the
 * PostgreSQL engine): connections in use and idle, and callers waiting.
 */
export interface PoolStatsSource {
  poolStats(): { total: number; idle: number; waiting: number };
}

/**
 * Register the engine's own gauges, if it has any. Duck-typed so engines
 * stay free of metrics code: they expose plain numbers, this reads them.
 */
export function observeEngine(metrics: DroverMetrics, engine: object): void {
  const { registry } = metrics;
  const engineLabel = metrics.engine;
  if (isGroupCommit(engine)) {
    const read = () => engine.stats;
    const batches = new CounterFamily({
      name: 'drover_store_commit_batches_total',
      help: 'Group commits (transactions) the store ran; drover_store_commit_operations_total / this = mean batch size.',
      labelNames: ['engine'],
      registry,
      collect: () => void (batches.series(engineLabel).value = read().batches),
    });
    const ops = new CounterFamily({
      name: 'drover_store_commit_operations_total',
      help: 'Write operations committed in group commits.',
      labelNames: ['engine'],
      registry,
      collect: () => void (ops.series(engineLabel).value = read().ops),
    });
    batches.series(engineLabel);
    ops.series(engineLabel);
    new Gauge({
      name: 'drover_store_commit_last_batch_size',
      help: 'Operations in the most recent group commit.',
      labelNames: ['engine'],
      registers: [registry],
      collect() {
        this.set({ engine: engineLabel }, read().lastBatchSize);
      },
    });
  }
  if (hasConnectionErrors(engine)) {
    const errors = new CounterFamily({
      name: 'drover_store_connection_errors_total',
      help: 'Store connections that failed (emitted an error) and were discarded, by kind: idle (pooled, unused), active (checked out), listen (LISTEN/NOTIFY session).',
      labelNames: ['engine', 'kind'],
      registry,
      collect: () => {
        for (const [kind, n] of Object.entries(engine.connectionErrors)) errors.series(engineLabel, kind).value = n;
      },
    });
    for (const kind of Object.keys(engine.connectionErrors)) errors.series(engineLabel, kind);
  }
  if (hasSpace(engine)) {
    new Gauge({
      name: 'drover_store_full',
      help: '1 while the store refuses writes for lack of disk space (SQLite SQLITE_FULL), until a write commits again.',
      labelNames: ['engine'],
      registers: [registry],
      collect() {
        this.set({ engine: engineLabel }, engine.space.full ? 1 : 0);
      },
    });
    const fullErrors = new CounterFamily({
      name: 'drover_store_full_errors_total',
      help: 'Store writes refused for lack of disk space (each a 507 at intake, or an outcome write retried).',
      labelNames: ['engine'],
      registry,
      collect: () => void (fullErrors.series(engineLabel).value = engine.space.fullErrors),
    });
    fullErrors.series(engineLabel);
    new Gauge({
      name: 'drover_store_outcome_writes_retrying',
      help: 'Job outcomes whose write failed for a temporary store fault (disk full, locked) and is being retried.',
      labelNames: ['engine'],
      registers: [registry],
      collect() {
        this.set({ engine: engineLabel }, engine.space.retrying);
      },
    });
  }
  if (hasPoolStats(engine)) {
    new Gauge({
      name: 'drover_store_pool_connections',
      help: 'Store connections in the pool, by state (in_use, idle).',
      labelNames: ['engine', 'state'],
      registers: [registry],
      collect() {
        const pool = engine.poolStats();
        this.set({ engine: engineLabel, state: 'in_use' }, Math.max(0, pool.total - pool.idle));
        this.set({ engine: engineLabel, state: 'idle' }, pool.idle);
      },
    });
    new Gauge({
      name: 'drover_store_pool_waiting_requests',
      help: 'Callers waiting for a free store connection.',
      labelNames: ['engine'],
      registers: [registry],
      collect() {
        this.set({ engine: engineLabel }, engine.poolStats().waiting);
      },
    });
  }
}

function isGroupCommit(engine: object): engine is GroupCommitSource {
  const stats = (engine as Partial<GroupCommitSource>).stats;
  return typeof stats === 'object' && stats !== null && typeof stats.batches === 'number' && typeof stats.ops === 'number';
}

function hasSpace(engine: object): engine is StoreSpaceSource {
  const space = (engine as Partial<StoreSpaceSource>).space;
  return typeof space === 'object' && space !== null && typeof space.full === 'boolean';
}

function hasPoolStats(engine: object): engine is PoolStatsSource {
  return typeof (engine as Partial<PoolStatsSource>).poolStats === 'function';
}

/** prom-client calls a gauge's `collect` on every scrape; set it after construction. */
function setCollect(gauge: Gauge<string>, collect: () => void | Promise<void>): void {
  (gauge as unknown as { collect: () => void | Promise<void> }).collect = collect;
}

/** What an engine whose connections can fail may expose: discarded connections by kind (the PostgreSQL engine). */
export interface ConnectionErrorsSource {
  readonly connectionErrors: Readonly<Record<string, number>>;
}

function hasConnectionErrors(engine: object): engine is ConnectionErrorsSource {
  const counts = (engine as Partial<ConnectionErrorsSource>).connectionErrors;
  return typeof counts === 'object' && counts !== null;
}
