/**
 * Assemble one Drover node: store → runtime → HTTP server, in that order, and
 * tear it down in reverse on shutdown. `drover start` and the e2e tests share it.
 * The node's composition root (docs/architecture.md): the one module that
 * knows every layer, so it hands the runtime what lives above it (the signed
 * audit trail, the doctor's probe handler, the metrics).
 */
import { DroverError } from '../core/errors.js';
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { readTls, reloadTls as reloadTlsFiles, warnIfExposed, watchTls } from '../api/listener.js';
import { ProbeServer } from '../api/probe-server.js';
import { probeRoutes } from '../api/routes/probes.js';
import type { ResolvedConfig } from '../core/config.js';
import { Readiness, schemaFromStatus, schemaRecheck } from '../obs/health.js';
import { observeStoreHealth, StoreHealth } from '../obs/store-health.js';
import { createLogger, type Logger } from '../obs/logger.js';
import { observeLogDrops } from '../obs/log-metrics.js';
import { observeBackupChecks, observeBackups } from '../ops/backup/metrics.js';
import { observeGates } from '../obs/rollout-metrics.js';
import { VERSION } from '../version.js';
import { observeAuditExport } from '../ops/audit/metrics.js';
import { prepareNodeOps } from '../ops/node-ops.js';
import { smokeHandler } from '../ops/doctor/smoke-handler.js';
import type { AuditTrail } from '../ops/audit/audit-trail.js';
import { DroverMetrics } from '../obs/metrics.js';
import { observeEngine, observeOnScrape } from '../obs/scrape-gauges.js';
import { Tracing } from '../obs/tracing.js';
import { observeOpsMetrics } from '../obs/ops-metrics.js';
import { instrumentStore } from '../store/instrumented.js';
import type { StorageEngine } from '../store/engine.js';
import { openStore } from '../store/open.js';
import { checkThreadHandlers } from '../runtime/thread-check.js';
import { assertCanListen } from './port-check.js';
import { bootstrapAdminKey } from './bootstrap-key.js';
import { Runtime, type StopResult } from '../runtime/runtime.js';
import { LOW_MEMORY_LEASE_AHEAD } from '../runtime/lease-window.js';
import { CLOSE_MS, settlesWithin } from '../runtime/shutdown.js';

export interface NodeOptions {
  config: ResolvedConfig;
  /** Set the first admin key instead of generating one (DROVER_BOOTSTRAP_ADMIN_KEY). */
  bootstrapAdminKey?: string;
  /** Write a generated first admin key to this new file (mode 0600) instead of printing it (`--admin-key-output`). */
  adminKeyOutput?: string;
  /** Apply pending migrations (default true); false only checks the schema version (`drover start --no-migrate`). */
  migrate?: boolean;
  logger?: Logger;
  /** Where human-facing lines (ready, first admin key) go. */
  print?: (line: string) => void;
  clock?: () => number;
  /** Listen (default true); tests may use `app.inject()` instead. */
  listen?: boolean;
  /**
   * Serve the HTTP API (default true). False (`drover start --worker-only`):
   * the node runs its handlers and serves only the probes and `/metrics` on
   * its port, from `node:http` (api/probe-server.ts); the API's modules
   * (Fastify, routes, schemas, console, OpenAPI) are never loaded, which
   * saves a worker about 30 MiB (docs/benchmarks.md).
   */
  api?: boolean;
  /** Tracing (tests pass one with an in-memory exporter); default from the OTEL_* environment. */
  tracing?: Tracing;
  /** The config module's path, for `isolation: 'thread'` handlers. */
  configPath?: string;
  /** `drover start --low-memory`: a SQLite store keeps a smaller page cache (store/open.ts), and leases 64 jobs ahead (runtime/lease-window.ts). */
  lowMemory?: boolean;
  /** The data directory (audit key, exports, snapshots); default from DROVER_DATA_DIR or the store (ops/data-dir.ts). */
  dataDir?: string;
}

/** A node; `App` is its HTTP server: Fastify with the API, the probe server on a worker-only node. */
export interface DroverNode<App = FastifyInstance> {
  runtime: Runtime<AuditTrail>;
  app: App;
  store: StorageEngine;
  logger: Logger;
  url: string;
  metrics: DroverMetrics;
  tracing: Tracing;
  /** The separate metrics-and-probes server when `metrics.port` is set, else null. */
  metricsApp: App | null;
  metricsUrl: string | null;
  /** Graceful shutdown; idempotent. */
  shutdown(graceMs?: number): Promise<StopResult>;
  /** Read `server.tls` files again (SIGHUP; `trigger` is logged); false when TLS is off. Throws, keeping the old certificate, when they cannot be loaded. */
  reloadTls(trigger?: string): boolean;
}

/** A `drover start --worker-only` node (`api: false`). */
export type WorkerOnlyNode = DroverNode<ProbeServer>;

let stdoutGuarded = false;

/**
 * The node's few plain lines (ready, console URL, a bootstrap key) go to
 * stdout. A reader that went away (EPIPE) or broke must not take the running
 * node down with an unhandled 'error': the lines are lost, as the log's are
 * (obs/logger.ts writes its own descriptor and handles that itself).
 */
function printToStdout(line: string): void {
  if (!stdoutGuarded) {
    stdoutGuarded = true;
    process.stdout.on('error', () => undefined);
  }
  process.stdout.write(`${line}\n`);
}

export async function startNode(options: NodeOptions & { api: false }): Promise<WorkerOnlyNode>;
export async function startNode(options: NodeOptions & { api?: true }): Promise<DroverNode>;
export async function startNode(options: NodeOptions): Promise<DroverNode | WorkerOnlyNode>;
export async function startNode(options: NodeOptions): Promise<DroverNode | WorkerOnlyNode> {
  const { config } = options;
  // Unreadable TLS files fail the start before anything is opened or started.
  if (config.server.tls) readTls(config.server.tls);
  const clock = options.clock ?? Date.now;
  const print = options.print ?? printToStdout;
  const logger = options.logger ?? createLogger({ level: config.log.level });
  // Everything that can refuse the start is checked before the store is
  // opened: a refused start leaves no store, no migration and no admin key.
  if (options.listen !== false) {
    await assertCanListen(config.server.host, config.server.port, '--port / DROVER_PORT (server.port)');
    if (config.metrics.port !== null) await assertCanListen(config.metrics.host, config.metrics.port, 'DROVER_METRICS_PORT (metrics.port)');
  }
  if (options.configPath) await checkThreadHandlers(options.configPath, config.handlers.values());
  const serveApi = options.api !== false;
  if (!serveApi && config.server.tls) {
    throw new DroverError('config_invalid', '--worker-only serves only the probes and /metrics, over plain HTTP: unset server.tls, or start the node with its API');
  }
  // The API's modules are loaded here, before the runtime starts leasing: loaded after it, their ~400 modules
  // were compiled on the event loop while the first jobs ran (a PostgreSQL drain from a backlog lost ~12 %).
  const [apiServer, metricsServer] = serveApi ? await Promise.all([import('../api/server.js'), import('../api/routes/metrics.js')]) : [null, null];
  const tracing = options.tracing ?? await Tracing.fromEnv(process.env);
  const engine = await openStore(config.databaseUrl, {
    clock,
    synchronous: config.sqlite.synchronous,
    ...(options.lowMemory ? { lowMemory: true } : {}),
    postgres: config.postgres,
    // Once per discarded connection; the engine carries on (drover_store_connection_errors_total counts them).
    // The driver's errors can carry the whole client: log what went wrong, not the object graph.
    onConnectionError: (kind, error) =>
      logger.warn(
        { kind, error: error.message, code: (error as { code?: unknown }).code },
        'store connection failed and was discarded; the node carries on with new connections',
      ),
  });
  const metrics = new DroverMetrics({ handlers: config.handlers.values(), queues: config.queues.keys(), queueLimits: config.queues, engine: engine.capabilities.engine, channel: config.rollout.channel });
  observeEngine(metrics, engine);
  observeLogDrops(metrics.registry);
  // Storage, node, process, TLS and error metrics (obs/ops-metrics.ts); `stop` ends the SQLite checkpoint timer.
  const opsMetrics = observeOpsMetrics(metrics, engine, { config, clock, logger, tracing });
  // Instrument at the seam: everything above the store calls it through the timing wrapper.
  const store = instrumentStore(engine, { timer: (op) => metrics.storeTimer(op), tracer: tracing.enabled ? tracing.tracer : null, ...opsMetrics.seam });
  try {
    // Migrations run under the engine's lock and refuse a schema newer than this binary.
    const status = await store.migrate({ apply: options.migrate !== false });
    if (status.applied.length > 0) logger.info({ applied: status.applied, version: status.current }, 'store migrated');
    // Before the node takes work: on SQLite the build holds the write lock (PostgreSQL builds CONCURRENTLY).
    const indexed = await store.ensurePayloadIndexes(config.search.payloadIndexes);
    if (indexed.length > 0) logger.info({ indexes: indexed }, 'payload search indexes built');
    const workerId = await nodeWorkerId(store, config);

    const ops = prepareNodeOps({ config, store, clock, ...(options.dataDir ? { dataDir: options.dataDir } : {}) });
    // Low memory on SQLite: a short lease-ahead window, so fewer leased rows outlive two scavenges into old space
    // (lease-window.ts). Not on PostgreSQL: there it saved nothing, and each extra lease is a round trip (~18 % more CPU per job).
    const lean = options.lowMemory && store.capabilities.engine === 'sqlite' ? { leaseAhead: LOW_MEMORY_LEASE_AHEAD } : {};
    // The doctor's probe handler (`drover smoke`) runs on every node.
    const runtime = new Runtime({ config, store, logger, workerId, clock, tracing, metrics, audit: ops.audit, builtinHandlers: [smokeHandler()], ...(options.configPath ? { configPath: options.configPath } : {}), ...lean });
    observeBackups(metrics.registry, store);
    observeBackupChecks(metrics.registry, store);
    observeGates(metrics.registry, () => runtime.gates.list());
    observeAuditExport(metrics.registry, () => ops.exporter?.status() ?? null);
    opsMetrics.afterStart({ store, exportedSeq: () => ops.exporter?.status().exportedSeq ?? null });
    observeOnScrape(metrics, {
      queueStats: () => store.queueStats(),
      pendingInterrupts: () => store.pendingInterrupts(),
      running: () => runtime.dispatcher.running.values(),
      refusals: runtime.refusals,
      maxDepth: (queue) => config.queues.get(queue)?.maxDepth,
      queues: config.queues.keys(),
      clock,
      onError: (error) => logger.warn({ err: error }, 'metrics: reading queue stats failed; /metrics keeps the last values'),
    });
    // One process owns a SQLite file, so its schema cannot move under it; a shared store is asked again every 30 s.
    const schema = store.capabilities.multiNode ? schemaRecheck(store, 30_000, clock) : schemaFromStatus(status);
    const storeHealth = new StoreHealth({ store, logger, clock });
    observeStoreHealth(metrics, storeHealth);
    const readiness = new Readiness({ state: () => runtime.state, store, schema, storeHealth });
    await runtime.start();
    ops.start(runtime);
    const separate = config.metrics.port !== null;
    storeHealth.start();
    // Imported only by a node that serves the API: a worker-only node never loads its modules, nor Fastify.
    const probes = () => new ProbeServer({ routes: probeRoutes({ runtime, metrics, readiness }), metrics, logger });
    const app: FastifyInstance | ProbeServer = apiServer
      ? await apiServer.buildServer({ runtime, obs: { metrics, readiness, serveMetrics: !separate && config.metrics.onApiPort, storeHealth }, auditExport: () => ops.exporter?.status() ?? null, snapshots: () => ops.snapshots })
      : probes();
    warnIfExposed(config, logger);
    const metricsApp: FastifyInstance | ProbeServer | null = !separate ? null : metricsServer ? await metricsServer.buildMetricsServer({ runtime, metrics, readiness }) : probes();
    let metricsUrl: string | null = null;
    let url = `${config.server.tls ? 'https' : 'http'}://${config.server.host}:${config.server.port}`;
    try {
      if (metricsApp && options.listen !== false) metricsUrl = await metricsApp.listen({ host: config.metrics.host, port: config.metrics.port ?? 0 });
      if (options.listen !== false) url = await app.listen({ host: config.server.host, port: config.server.port });
      // Only once the node serves: a start that fails before this point must not use up the one-time key.
      await bootstrapAdminKey(store, clock, options.bootstrapAdminKey, print, options.adminKeyOutput);
    } catch (error) {
      // A listen race the port check could not see, or an unwritable admin-key
      // file: stop what has started too, or the process would never exit.
      await ops.stop().catch(() => undefined);
      await app.close().catch(() => undefined);
      await metricsApp?.close().catch(() => undefined);
      await runtime.stop(0).catch(() => undefined);
      storeHealth.stop();
      throw error;
    }
    const gates = runtime.gates.list();
    const off = gates.filter((g) => !g.enabled).map((g) => g.name);
    logger.info(
      { channel: config.rollout.channel, feature_gates: Object.fromEntries(gates.map((g) => [g.name, g.enabled])), version: VERSION, store: store.capabilities.engine, url },
      `node started on channel ${config.rollout.channel}`,
    );
    print(
      `drover ready handlers=${config.handlers.size} queues=${config.queues.size} store=${store.capabilities.engine} channel=${config.rollout.channel}${off.length > 0 ? ` gates-off=${off.join(',')}` : ''}${serveApi ? '' : ' api=off'}${metricsUrl ? ` metrics=${metricsUrl}` : ''} url=${url}`,
    );
    if (config.console.enabled && serveApi) print(`web console: ${url}/console/ (sign in with an API key)`);

    const reloadTls = (trigger = 'call'): boolean => {
      const tls = config.server.tls;
      // A worker-only node refuses server.tls at start: only an API node has certificates to reload.
      if (!tls || app instanceof ProbeServer) return false;
      reloadTlsFiles(app, tls);
      logger.info({ cert_file: tls.certFile, trigger }, 'TLS certificate reloaded; new connections use it');
      return true;
    };
    // Renewed files are picked up without a signal too (SIGHUP reloads at once).
    const stopWatchingTls = config.server.tls
      ? watchTls(config.server.tls, () => {
          try {
            reloadTls('file change');
          } catch (error) {
            logger.error({ err: error }, 'TLS reload failed; the previous certificate stays in use');
          }
        })
      : () => undefined;

    let closing: Promise<StopResult> | null = null;
    const shutdown = (graceMs?: number): Promise<StopResult> => {
      closing ??= (async () => {
        stopWatchingTls();
        const result = await runtime.stop(graceMs);
        // Bounded like the runtime's steps (runtime/shutdown.ts): what has not closed in time is left to the exit.
        const closing = (async () => {
          await ops.stop();
          await app.close();
          await metricsApp?.close();
          await tracing.shutdown().catch((error: unknown) => logger.warn({ err: error }, 'exporting the last spans failed'));
          storeHealth.stop();
          await opsMetrics.stop({ flush: true });
          await store.close();
        })();
        if (!(await settlesWithin(closing, CLOSE_MS / 2))) logger.warn({ ms: CLOSE_MS / 2 }, 'closing the servers and the store took too long; exiting without waiting for them');
        else await closing;
        logger.info({ drained: result.drained, released: result.released }, 'drover stopped');
        logger.flush?.();
        return result;
      })();
      return closing;
    };
    const node = { runtime, store, logger, url, metrics, tracing, metricsUrl, shutdown, reloadTls };
    return app instanceof ProbeServer ? { ...node, app, metricsApp: metricsApp as ProbeServer | null } : { ...node, app, metricsApp: metricsApp as FastifyInstance | null };
  } catch (error) {
    await opsMetrics.stop();
    await store.close().catch(() => undefined);
    await tracing.shutdown().catch(() => undefined);
    throw error;
  }
}

/**
 * A stable id for this node's in-process worker, so a restart reclaims its own
 * leases at once: `DROVER_NODE_ID` when set. Otherwise, on a store one process
 * owns (SQLite), an id generated once and kept in the store. On a shared store
 * (PostgreSQL) that would be the same id for every node, so it is
 * `<hostname>:<port>` — two live nodes cannot listen on one host and port —
 * or, with port 0, `<hostname>:<random>` per process (a restarted node's old
 * jobs are then reclaimed by dead-node detection, seconds later).
 */
async function nodeWorkerId(store: StorageEngine, config: ResolvedConfig): Promise<string> {
  const fromEnv = process.env.DROVER_NODE_ID;
  if (fromEnv) return fromEnv;
  if (store.capabilities.multiNode) {
    return `${hostname()}:${config.server.port === 0 ? randomUUID().slice(0, 8) : config.server.port}`;
  }
  const existing = await store.getMeta('node_id');
  if (existing) return existing;
  const id = `${hostname()}-${randomUUID().slice(0, 8)}`;
  await store.setMeta('node_id', id);
  return id;
}
