/**
 * The config's defaults, exported from config.ts. A module of their own so
 * the check and resolve modules read them without importing config.ts (no
 * import cycle); docs/configuration.md lists each, a test keeps them in step.
 */
import { DURABLE_DEFAULTS } from './durable.js';

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

/**
 * Every default, in one place. `handler.*` are per-handler defaults (written
 * `handlers[].*` in the config), `queue.*` per-queue defaults (`queues.<name>.*`).
 * A handler without `timeoutMs` gets the resolved `limits.timeoutMs`.
 *
 * @example
 * DEFAULTS.server.port; // 7070
 */
export const DEFAULTS = {
  server: {
    host: '127.0.0.1',
    port: 7070,
    requestTimeoutMs: 30_000,
    headersTimeoutMs: 10_000,
    keepAliveTimeoutMs: 72_000,
    connectionTimeoutMs: 0,
    maxConnections: 10_000,
  },
  databaseUrl: './data/drover.db',
  queue: { maxDepth: 100_000, weights: { priority: 1, age: 0 }, ageUnitMs: 1000, fairness: 'none' },
  handler: {
    queue: 'default',
    concurrency: 10,
    concurrencyLimit: 1,
    priority: 0,
    retry: {
      maxAttempts: 5,
      backoff: { initialMs: 1000, maxMs: 3_600_000, factor: 2, jitter: 'full' },
    },
    cronTimezone: 'UTC',
    isolation: 'inline',
    quarantine: { failures: 5, windowMs: 5 * MINUTE },
    breaker: { failures: 3, ratio: 0.5, minRequests: 10, window: 20, coolDownMs: MINUTE },
  },
  limits: { maxPayloadBytes: 1_048_576, timeoutMs: 300_000, memoryMb: 256, maxJsonDepth: 64, maxJsonMembers: 100_000 },
  threads: { restartInitialMs: 100, restartMaxMs: 30_000 },
  durable: DURABLE_DEFAULTS,
  webhooks: { allowPrivateNetworks: false, timeoutMs: 10_000, maxAttempts: 8 },
  actions: { telegramApiUrl: 'https://api.telegram.org' },
  shutdown: { graceMs: 25_000 },
  retention: { succeededMs: 7 * DAY, deadMs: 30 * DAY, eventsMs: 7 * DAY, intervalMs: 10 * MINUTE, batchSize: 1000 },
  poisonAfter: 3,
  postgres: { schema: 'drover', poolMax: 10, statementTimeoutMs: 10_000, queryTimeoutMs: 12_000, connectTimeoutMs: 5_000, keepAliveIdleMs: 5_000 },
  cluster: { heartbeatMs: 1000, deadNodeMs: 3000 },
  log: { level: 'info' },
  metrics: { host: '127.0.0.1', onApiPort: true },
  auth: { maxFailures: 20, failureWindowMs: MINUTE },
  sqlite: { synchronous: 'FULL' },
  rateLimit: { enabled: true, windowMs: 1000, max: 5000 },
  stream: { heartbeatMs: 10_000, bufferSize: 10_000, retentionMs: 5 * MINUTE },
  backup: { every: 'off', dir: 'backups', keepDaily: 7, keepWeekly: 4, keepMonthly: 12 },
  audit: { exportDir: 'audit', keepFiles: 30, exportIntervalMs: MINUTE },
  console: { enabled: true, sessionTtlMs: 12 * 60 * MINUTE },
  search: { payloadIndexes: [] },
} as const;
