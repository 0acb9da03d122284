/**
 * What users write: handler definitions and the config that lists them.
 * `defineHandler` and `defineConfig` are typing helpers only; a plain object
 * is the same thing. Validation and defaults live in `config.ts`.
 */
import type { EventRow } from './types.js';
import type { Filter } from './filter.js';
import type { WaitMatch } from './durable.js';
import type { FeatureFlags } from './rollout.js';

/** The logger a handler gets: pino-compatible subset. */
export interface HandlerLogger {
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
  debug(obj: object | string, msg?: string): void;
}

export interface JobContext<P = unknown> {
  job: { id: string; handler: string; queue: string; attempt: number; maxAttempts: number; payload: P };
  /** The event that created this job, when it came from one. */
  event: EventRow | null;
  /** Fires when the attempt times out or the node shuts down; stop work promptly. */
  signal: AbortSignal;
  log: HandlerLogger;
  /** Extend the lease (long jobs); resolves false when the lease was lost (stop: someone else owns the job). */
  heartbeat(): Promise<boolean>;
  /** Durable steps: memoized work, sleeps, waits for events and for a person (docs/durable-execution.md). */
  step: StepApi;
  /** Feature gates (`rollout.featureGates`, with operators' runtime overrides): `ctx.features.enabled('new-pricing')`. An unknown gate is off. */
  features: FeatureFlags;
}

/** An event a `waitForEvent` step resolved with. */
export interface WaitedEvent<D = unknown> {
  id: string;
  name: string;
  data: D;
  tenant: string | null;
  receivedAt: number;
}

/**
 * Durable steps. Step names are unique within a job; the handler re-runs
 * from the top after a suspension, a retry or a crash, and each finished
 * step returns its stored result without running again.
 */
export interface StepApi {
  /** Run `fn` once; its JSON result is stored before the handler goes on, and returned on every later run. */
  run<T>(name: string, fn: () => T | Promise<T>): Promise<T>;
  /** Suspend the job (it leaves the worker) for `ms`, or until a time (`{ until }`, ms since the epoch or a Date). */
  sleep(name: string, duration: number | { until: number | Date }): Promise<void>;
  /** Suspend until an event with this name (or any of these names) whose fields match arrives; `null` at the timeout. */
  waitForEvent<D = unknown>(name: string, options: { event: string | string[]; match?: WaitMatch; timeoutMs?: number }): Promise<WaitedEvent<D> | null>;
  /** Suspend on a pending interrupt until a person resumes it (`POST /v1/interrupts/:id/resume`); its input, or `null` at the timeout. */
  interrupt<I = unknown>(name: string, options: { prompt: string; schema?: object; timeoutMs?: number }): Promise<I | null>;
  /** A stable idempotency key for the step's calls to outside systems (the same on every attempt of this job). */
  key(name: string): string;
}

export interface TriggerSpec {
  /** Event name or pattern: `order.created`, `order.*` (one segment), `order.**` (any depth). */
  event: string;
  filter?: Filter;
  /**
   * Run once after the last event of a window, with its payload; each event
   * pushes the run back by `windowMs`, never past the first + `maxWaitMs`.
   * `key`: `tenant` or `data.<path>` (one window per value). One of debounce, throttle, batch.
   */
  debounce?: { key?: string; windowMs: number; maxWaitMs?: number };
  /** At most `limit` job starts per `periodMs` per key; excess events wait for the next free slot (never dropped). */
  throttle?: { key?: string; limit: number; periodMs: number };
  /** One job per up to `maxSize` events or `maxWaitMs` from the first, payload `{ events: [{ id, data, tenant, receivedAt }] }`. */
  batch?: { key?: string; maxSize: number; maxWaitMs: number };
}

export interface BackoffPolicy {
  /** Delay before the first retry. Default 1000 ms. */
  initialMs?: number;
  /** Cap on any single delay. Default 1 h. */
  maxMs?: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
  /** `full` (default): uniform in [0, delay]; `equal`: delay/2 + uniform [0, delay/2]; `none`. */
  jitter?: 'full' | 'equal' | 'none';
}

export interface RetryPolicy {
  /** Total attempts including the first. Default 5. */
  maxAttempts?: number;
  backoff?: BackoffPolicy;
}

export interface HandlerDefinition<P = unknown> {
  /** Unique name: letters, digits, `._:-`, up to 100 characters. */
  name: string;
  /** Events this handler subscribes to. */
  on?: string | TriggerSpec | Array<string | TriggerSpec>;
  queue?: string;
  /** Jobs of this handler running at once on one node. Default 10. */
  concurrency?: number;
  /**
   * Where the concurrency key comes from: `tenant` (the event's tenant) or
   * `payload.<path>`. At most `concurrencyLimit` jobs per key run at once.
   */
  concurrencyKey?: string;
  /** Default 1. */
  concurrencyLimit?: number;
  /** Higher runs first. Default 0. */
  priority?: number;
  retry?: RetryPolicy;
  /** Hard limit on one attempt. Default 5 min. */
  timeoutMs?: number;
  /** Cron expressions (5 or 6 fields); each tick enqueues one job, once cluster-wide. */
  cron?: string | string[];
  /** IANA time zone for `cron`. Default UTC. */
  cronTimezone?: string;
  /**
   * `true` declares a handler that only remote workers run (over
   * `/v1/workers/*`, see docs/remote-workers.md): it has no `run`, and the
   * node never runs its jobs itself. Default false.
   */
  remote?: boolean;
  /** The handler's code; required unless `remote: true`. */
  run?(ctx: JobContext<P>): unknown | Promise<unknown>;
  /**
   * `inline` (default) runs in the node's thread; `thread` runs in a worker
   * thread with a heap limit and a hard timeout that terminates it, so an
   * out-of-memory or looping handler fails only its own job.
   */
  isolation?: 'inline' | 'thread';
  /** Per-handler limits; default `limits.timeoutMs` / `limits.memoryMb`. `memoryMb` applies to `thread` isolation. */
  limits?: { timeoutMs?: number; memoryMb?: number };
  /** Quarantine after `failures` failed attempts within `windowMs` (default 5 in 5 min); an operator resets it. */
  quarantine?: { failures?: number; windowMs?: number };
  /** Circuit breaker (defaults in docs/configuration.md); open means jobs wait without spending attempts. */
  breaker?: { failures?: number; ratio?: number; minRequests?: number; window?: number; coolDownMs?: number };
  /** At most `limit` job starts per `periodMs`, per `key` (`tenant` or `payload.<path>`) when set. */
  rateLimit?: { limit: number; periodMs: number; key?: string };
}

export interface QueueDefinition {
  /** Unfinished jobs (scheduled + queued + running) allowed; beyond it intake answers 429. Default 100,000. */
  maxDepth?: number;
  /**
   * Lease order: how much priority and waiting time count (each 0–1, summing
   * to 1). Default `{ priority: 1, age: 0 }`, strict priority
   * (docs/configuration.md "Weighted priority and aging").
   */
  weights?: { priority: number; age: number };
  /** The unit of waiting time `weights.age` counts in, ms. Default 1000. */
  ageUnitMs?: number;
  /** `'tenant'`: tenants take turns in this queue (docs/configuration.md "Fairness across tenants"). Default `'none'`. */
  fairness?: 'none' | 'tenant';
  /** Running jobs any one tenant may have in this queue (lease caps, docs/configuration.md "Tenant caps"). Default: no cap. */
  tenantMaxActiveLeases?: number;
}

/**
 * Lease caps (docs/configuration.md "Flow control"), enforced by the store
 * inside each lease, for the node's own dispatch and remote workers alike.
 *
 * @example
 * flow: { tenants: { maxActiveLeases: 20, overrides: { acme: 100 } }, workers: { maxActiveLeases: 8, keyMaxActiveLeases: 32 } }
 */
export interface FlowDefinition {
  tenants?: {
    /** Running jobs any one tenant may have across every handler, queue and node. Default: no cap. */
    maxActiveLeases?: number;
    /** Per tenant, its own cap in place of `maxActiveLeases` (0: none of its jobs are leased). */
    overrides?: Record<string, number>;
  };
  workers?: {
    /** Running jobs one remote worker id may hold, whatever `max` it asks for. Default: no cap. */
    maxActiveLeases?: number;
    /** Running jobs one work key may hold over all its worker ids (a key's own entry in `keys` wins). Default: no cap. */
    keyMaxActiveLeases?: number;
    /** Per work key, by its id (`key_…`) or name: its own caps over all its worker ids and per worker id. */
    keys?: Record<string, { maxActiveLeases?: number; maxWorkerLeases?: number }>;
  };
}

export interface DroverConfig {
  handlers: HandlerDefinition<any>[];
  queues?: Record<string, QueueDefinition>;
  flow?: FlowDefinition;
  server?: {
    host?: string;
    port?: number;
    /** The whole request must arrive within this (default 30 s); slow bodies get 408 and are closed. */
    requestTimeoutMs?: number;
    /** Headers must arrive within this (default 10 s); at most `requestTimeoutMs`. */
    headersTimeoutMs?: number;
    /** Idle keep-alive connections close after this (default 72 s, above common load-balancer idle timeouts). */
    keepAliveTimeoutMs?: number;
    /** Socket inactivity while an answer is pending (default 0, off; else at least 65 s, above lease long-polls). SSE streams are exempt. */
    connectionTimeoutMs?: number;
    /** Open connections at most (default 10,000); more are closed as they arrive. */
    maxConnections?: number;
    /** Addresses or CIDRs of reverse proxies whose `X-Forwarded-For` names the client (per-address limits). Default none. */
    trustProxy?: string[];
    /** Serve HTTPS with these PEM files; reloaded when they change and on SIGHUP. Default: plain HTTP. */
    tls?: { certFile: string; keyFile: string };
  };
  /** `postgres://…` URL or SQLite file path. Default `./data/drover.db`. */
  databaseUrl?: string;
  limits?: {
    /** Largest request body / event data / job payload. Default 1 MiB. */
    maxPayloadBytes?: number;
    /** Default handler timeout. */
    timeoutMs?: number;
    /** Default heap limit of a `thread`-isolated handler (MiB). Default 256. */
    memoryMb?: number;
    /** Deepest nesting accepted in a request's JSON (default 64, at most 512); deeper gets 422. */
    maxJsonDepth?: number;
    /** Most keys and array elements, counted over the whole request JSON (default 100,000); more gets 422. */
    maxJsonMembers?: number;
  };
  /** Replacement of crashed handler threads: exponential backoff, capped. */
  threads?: { restartInitialMs?: number; restartMaxMs?: number };
  /** The built-in webhook action (`POST /v1/triggers`). */
  webhooks?: {
    /** Allow targets on loopback, private, link-local and metadata addresses. Default false. */
    allowPrivateNetworks?: boolean;
    timeoutMs?: number;
    maxAttempts?: number;
    breaker?: { failures?: number; ratio?: number; minRequests?: number; window?: number; coolDownMs?: number };
  };
  /** The other built-in actions (docs/actions.md); `webhooks.*` applies to them too. */
  actions?: {
    /** Base URL of the Telegram Bot API (a self-hosted Bot API server, a test double). Default `https://api.telegram.org`. */
    telegramApiUrl?: string;
  };
  shutdown?: { graceMs?: number };
  retention?: {
    /** Keep succeeded and cancelled jobs this long. Default 7 days. */
    succeededMs?: number;
    /** Keep dead jobs this long. Default 30 days. */
    deadMs?: number;
    /** Keep events this long (once no job refers to them). Default 7 days. */
    eventsMs?: number;
    /** How often the pruner runs. Default 10 min. */
    intervalMs?: number;
    batchSize?: number;
  };
  /** A job whose attempts end by a crash this many times (lease lost to a crash or expiry, thread killed by its memory limit or dying) is dead with reason `poison`. Default 3. */
  poisonAfter?: number;
  log?: { level?: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent' };
  sqlite?: { synchronous?: 'FULL' | 'NORMAL' };
  /**
   * PostgreSQL: the schema holding Drover's tables (default `drover`), connections per node in the general pool (default 10),
   * and the deadline of every store call: the server's `statement_timeout` (default 10 s), the client's wait for an answer
   * (default 12 s; the connection is discarded when it passes), connecting (default 5 s), TCP keepalive idle time (default 5 s).
   */
  postgres?: { schema?: string; poolMax?: number; statementTimeoutMs?: number; queryTimeoutMs?: number; connectTimeoutMs?: number; keepAliveIdleMs?: number };
  /** PostgreSQL, several nodes: heartbeat interval (default 1 s) and when a silent node is declared dead (default 3 s). */
  cluster?: { heartbeatMs?: number; deadNodeMs?: number };
  /** A separate listener for `/metrics` and the health probes (off unless `port` is set). */
  metrics?: { host?: string; port?: number; /** Serve `/metrics` on the API port when no `port` is set (default true). */ onApiPort?: boolean };
  /** Failed authentications per client address per window before it gets 429 (defaults 20 per 60 s). */
  auth?: { maxFailures?: number; failureWindowMs?: number };
  /** Per API key and route, fixed windows. Default 5,000 requests per second per key and route. */
  rateLimit?: { enabled?: boolean; windowMs?: number; max?: number; routes?: Record<string, number> };
  /** Payload fields job searches filter on often: each gets an expression index, built at start (docs/api.md). */
  search?: { payloadIndexes?: string[] };
  /** The web console at `/console` (default on) and how long a sign-in lasts (default 12 h). */
  console?: { enabled?: boolean; sessionTtlMs?: number };
  /** `GET /v1/stream` (SSE): heartbeat interval and the replay buffer for `Last-Event-ID`. */
  stream?: { heartbeatMs?: number; bufferSize?: number; retentionMs?: number };
  /** In-process backups (`drover backup create` works without this). Default off. */
  backup?: {
    /** `"off"`, or how often: `"6h"`, `"24h"`, `"7d"` (1 min to 24 days) or milliseconds. */
    every?: string | number;
    /** Where backups go; relative to the data directory. Default `backups`. */
    dir?: string;
    /** Retention applied after each scheduled backup. Defaults 7 daily, 4 weekly, 12 monthly. */
    keepDaily?: number;
    keepWeekly?: number;
    keepMonthly?: number;
    /** Verify the newest backup after each scheduled one (checksums, integrity, row counts, audit chain). Default true. */
    verify?: boolean;
    /**
     * Copy each scheduled backup to S3-compatible object storage, check it there, and apply the same retention
     * remotely. Credentials: the two files, else the AWS SDK's own chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY…).
     */
    remote?: { url: string; endpoint?: string; region?: string; forcePathStyle?: boolean; accessKeyIdFile?: string; secretAccessKeyFile?: string };
  };
  /**
   * Durable steps: limits on what a job stores (defaults 1 MiB per step
   * result, 1,000 steps, 32 MiB per job); beyond one the step fails with a
   * clear error and nothing is written.
   */
  durable?: { maxStepResultBytes?: number; maxStepsPerJob?: number; maxStateBytesPerJob?: number };
  /**
   * The release channel this node belongs to (one of `channels`, default the stages development → staging →
   * canary → production; default `production`) and feature gates: Drover's own (`durable-steps`,
   * `remote-workers`, on by default) and yours, read in handlers with `ctx.features.enabled(name)`.
   * An operator may override a gate at runtime (`drover gates set`); the config value applies where none is set.
   */
  rollout?: { channel?: string; channels?: string[]; featureGates?: Record<string, boolean> };
  /** The audit trail's JSONL export, rotated daily. */
  audit?: {
    /** Relative to the data directory. Default `audit`. */
    exportDir?: string;
    /** Newest files kept. Default 30. */
    keepFiles?: number;
    /** How often new records are appended. Default 60 s. */
    exportIntervalMs?: number;
  };
}

/**
 * Typing helper for a handler.
 * @example
 * export const sendEmail = defineHandler({
 *   name: 'send-welcome-email',
 *   on: 'user.created',
 *   retry: { maxAttempts: 3 },
 *   async run(ctx) { await mailer.send(ctx.job.payload) },
 * });
 */
export function defineHandler<P = any>(definition: HandlerDefinition<P>): HandlerDefinition<P> {
  return definition;
}

/**
 * Typing helper for the config file's default export.
 * @example
 * export default defineConfig({ handlers: [sendEmail], queues: { default: { maxDepth: 50_000 } } });
 */
export function defineConfig(config: DroverConfig): DroverConfig {
  return config;
}
