/**
 * Storage metrics beyond the per-call timings: what an operator of the
 * embedded engine watches (WAL size, checkpoints, commit latency, file size)
 * and the PostgreSQL pool's limit. Engines expose plain numbers, a callback
 * field and a `checkpoint()` method; this file turns them into metrics and
 * runs the periodic checkpoint. Duck-typed like scrape-gauges.ts, so an engine
 * without a feature simply has no such series.
 */
import { statSync } from 'node:fs';
import { Gauge } from 'prom-client';
import { toError } from '../core/errors.js';
import { cachedRead } from './cached-read.js';
import type { DroverMetrics } from './metrics.js';
import { CounterFamily, HistogramFamily } from './series.js';

/** Group commits: 250 µs (fast SSD, small batch) to 5 s (a stalled disk). */
export const COMMIT_BUCKETS = [0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] as const;
export const CHECKPOINT_OUTCOMES = ['complete', 'busy', 'failed'] as const;

/** The SQLite engine's hooks (sqlite-engine.ts). */
export interface SqliteFileSource {
  readonly path: string;
  onCommitTimed: ((seconds: number) => void) | null;
  checkpoint(): { busy: boolean; walFrames: number; checkpointedFrames: number };
}

interface TableSizesSource {
  tableSizes(): Promise<Array<{ table: string; bytes: number }>>;
}

/** The PostgreSQL engine's hook (postgres-engine.ts): another node's NOTIFY arrived after this long. */
interface NotifyLagSource {
  onNotifyLag: ((seconds: number) => void) | null;
}

/** NOTIFY lag: 1 ms (a local server) to 10 s (a backed-up notification queue). */
export const NOTIFY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

interface PoolLimitSource {
  poolStats(): { max?: number };
}

export interface StoreMetricsOptions {
  /** How often the SQLite checkpoint runs. Default 30 s. */
  checkpointEveryMs?: number;
  /** A checkpoint or a table-size read failed. */
  onError?: (error: Error, what: 'checkpoint' | 'table sizes') => void;
}

/**
 * Register the storage metrics for `engine` (the raw engine, not the timing
 * wrapper) and start the SQLite checkpoint. Returns the stop function.
 *
 * @example
 * const stopStoreMetrics = observeStorage(metrics, engine, { onError: (err) => logger.warn({ err }, 'checkpoint failed') });
 * // on shutdown, before the store closes:
 * stopStoreMetrics();
 */
export function observeStorage(metrics: DroverMetrics, engine: object, options: StoreMetricsOptions = {}): () => void {
  if (hasPoolLimit(engine)) {
    new Gauge({
      name: 'drover_store_pool_max_connections',
      help: 'Most connections the store pools may open (drover_store_pool_connections{state="in_use"} / this = pool use).',
      labelNames: ['engine'],
      registers: [metrics.registry],
      collect() {
        this.set({ engine: metrics.engine }, engine.poolStats().max ?? 0);
      },
    });
  }
  if (hasTableSizes(engine)) observeTableSizes(metrics, engine, options.onError);
  if (hasNotifyLag(engine)) return observeNotifyLag(metrics, engine);
  if (!isSqliteFile(engine)) return () => undefined;
  return observeSqlite(metrics, engine, options);
}

/**
 * `drover_store_notify_lag_seconds`: from another node stamping a NOTIFY (just
 * before the statement that sends it) to this node's listener receiving it.
 * Wall clocks of two hosts: their skew is part of the value.
 */
function observeNotifyLag(metrics: DroverMetrics, engine: NotifyLagSource): () => void {
  const lag = new HistogramFamily({
    name: 'drover_store_notify_lag_seconds',
    help: 'PostgreSQL: time from another node sending a work NOTIFY to this node receiving it (sender and receiver wall clocks; NTP skew between hosts adds to it).',
    labelNames: ['engine'],
    buckets: NOTIFY_BUCKETS,
    registry: metrics.registry,
  }).series(metrics.engine);
  engine.onNotifyLag = (seconds) => lag.observe(seconds);
  return () => {
    engine.onNotifyLag = null;
  };
}

function hasNotifyLag(engine: object): engine is NotifyLagSource {
  return 'onNotifyLag' in engine;
}

function observeSqlite(metrics: DroverMetrics, engine: SqliteFileSource, options: StoreMetricsOptions): () => void {
  const { registry } = metrics;
  const label = metrics.engine;
  const onDisk = engine.path !== ':memory:' && engine.path !== '';
  const size = (suffix: string): number => {
    if (!onDisk) return 0;
    try {
      return statSync(engine.path + suffix).size;
    } catch {
      return 0; // No -wal file between a clean close and the next write.
    }
  };
  new Gauge({
    name: 'drover_store_wal_size_bytes',
    help: 'Size of the SQLite write-ahead log (-wal file); it grows when checkpoints cannot finish (a long-lived reader).',
    labelNames: ['engine'],
    registers: [registry],
    collect() {
      this.set({ engine: label }, size('-wal'));
    },
  });
  new Gauge({
    name: 'drover_store_file_size_bytes',
    help: 'Size of the SQLite database file (without its -wal).',
    labelNames: ['engine'],
    registers: [registry],
    collect() {
      this.set({ engine: label }, size(''));
    },
  });

  const commits = new HistogramFamily({ name: 'drover_store_commit_duration_seconds', help: 'Duration of each group commit, BEGIN until it is durable (with synchronous=FULL, the WAL sync, including a wait for the sync already in flight).', labelNames: ['engine'], buckets: COMMIT_BUCKETS, registry });
  const commitSeries = commits.series(label);
  engine.onCommitTimed = (seconds) => commitSeries.observe(seconds);

  const durations = new HistogramFamily({ name: 'drover_store_checkpoint_duration_seconds', help: 'Duration of the periodic passive WAL checkpoint.', labelNames: ['engine'], buckets: COMMIT_BUCKETS, registry });
  const durationSeries = durations.series(label);
  const outcomes = new CounterFamily({ name: 'drover_store_checkpoints_total', help: 'Periodic WAL checkpoints by outcome: complete (the whole WAL copied back), busy (a reader or writer kept it from finishing), failed.', labelNames: ['engine', 'outcome'], registry });
  for (const outcome of CHECKPOINT_OUTCOMES) outcomes.series(label, outcome);
  let pending = 0;
  new Gauge({
    name: 'drover_store_wal_pending_frames',
    help: 'WAL frames the last checkpoint could not copy back into the database file (0 when it finished).',
    labelNames: ['engine'],
    registers: [registry],
    collect() {
      this.set({ engine: label }, pending);
    },
  });

  const run = (): void => {
    const started = performance.now();
    try {
      const result = engine.checkpoint();
      durationSeries.observe((performance.now() - started) / 1000);
      pending = Math.max(0, result.walFrames - result.checkpointedFrames);
      outcomes.series(label, result.busy || pending > 0 ? 'busy' : 'complete').inc();
    } catch (error) {
      outcomes.series(label, 'failed').inc();
      options.onError?.(toError(error), 'checkpoint');
    }
  };
  const timer = setInterval(run, options.checkpointEveryMs ?? 30_000);
  timer.unref();
  return () => {
    clearInterval(timer);
    if (engine.onCommitTimed) engine.onCommitTimed = null;
  };
}

/**
 * `drover_store_table_size_bytes{table}`, indexes included: PostgreSQL, a
 * catalog lookup; SQLite, `dbstat` in a worker thread (it reads every page,
 * so the engine reuses its answer for 5 minutes). Asked at most once a minute.
 */
function observeTableSizes(metrics: DroverMetrics, engine: TableSizesSource, onError?: StoreMetricsOptions['onError']): void {
  const sizes = cachedRead(() => engine.tableSizes(), { maxAgeMs: 60_000, clock: Date.now, onError: (error) => onError?.(error, 'table sizes') });
  new Gauge({
    name: 'drover_store_table_size_bytes',
    help: 'Bytes per store table, indexes included (PostgreSQL: catalog sizes, read at most once a minute; SQLite: dbstat pages, read at most every 5 minutes).',
    labelNames: ['engine', 'table'],
    registers: [metrics.registry],
    async collect() {
      for (const { table, bytes } of (await sizes()) ?? []) this.set({ engine: metrics.engine, table }, bytes);
    },
  });
}

function hasTableSizes(engine: object): engine is TableSizesSource {
  return typeof (engine as Partial<TableSizesSource>).tableSizes === 'function';
}

function isSqliteFile(engine: object): engine is SqliteFileSource {
  const e = engine as Partial<SqliteFileSource>;
  return typeof e.path === 'string' && typeof e.checkpoint === 'function' && 'onCommitTimed' in e;
}

function hasPoolLimit(engine: object): engine is PoolLimitSource {
  const e = engine as Partial<PoolLimitSource>;
  return typeof e.poolStats === 'function' && typeof e.poolStats().max === 'number';
}
