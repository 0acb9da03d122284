/**
 * Configuration: validate the user's config (the default export of their
 * config file), apply environment variables and CLI overrides, and resolve
 * every default in one pass. Validation collects every problem before it
 * throws, so a broken config is fixed in one edit, not one restart per typo.
 *
 * Precedence, highest first: overrides (CLI flags) > `DROVER_*` env > config file > `DEFAULTS`.
 * `docs/configuration.md` documents every key; a test keeps it in step with `DEFAULTS`.
 */
import { compileCron, isValidTimezone } from './cron.js';
import { DroverError } from './errors.js';
import { LEASE_LIMITS } from './lease-limits.js';
import { DURABLE_DEFAULTS, type DurableLimits } from './durable.js';
import { parseStoreUrl } from './store-url.js';
import { compileFilter, lookupPath } from './filter.js';
import { DEFAULT_CHANNEL, DEFAULT_CHANNELS } from './rollout.js';
import { type QueuePolicy } from './queue-policy.js';
import { resolveQueue } from './config-queues.js';
import type { FlowCaps } from './lease-caps.js';
import type { BreakerPolicy } from './breaker.js';
import type { BackoffPolicy, HandlerDefinition } from './handler.js';
import type { QuarantinePolicy } from './quarantine.js';
import { compilePattern } from './trigger.js';
import { checkTriggerControl, type TriggerControl } from './trigger-control.js';
import { definedOnly, readEnv, readOverrides, type ConfigOverrides, type Settings } from './config-sources.js';
import {
  configSchema,
  formatKey,
  fromZod,
  got,
  NAME_EXPECTED,
  NAME_RE,
  parseDuration,
  ROUTE_KEY_EXPECTED,
  ROUTE_KEY_RE,
  type ConfigIssue,
  type LogLevel,
  type ParsedConfig,
} from './config-schema.js';

export { LOG_LEVELS, type ConfigIssue, type LogLevel } from './config-schema.js';
export { ENV_VARS, type ConfigOverrides } from './config-sources.js';

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

export interface ResolvedTrigger {
  pattern: string;
  matches(eventName: string): boolean;
  filter: ((data: unknown) => boolean) | null;
  /** Debounce, throttle or batch (core/trigger-control.ts); null: one job per event. */
  control: TriggerControl | null;
}

export interface ResolvedHandler {
  name: string;
  queue: string;
  concurrency: number;
  /** `tenant` or `payload.<path>`, as the user wrote it; null when not set. */
  concurrencyKey: string | null;
  concurrencyLimit: number;
  priority: number;
  maxAttempts: number;
  backoff: Required<BackoffPolicy>;
  timeoutMs: number;
  triggers: ResolvedTrigger[];
  cron: string[];
  cronTimezone: string;
  /** Run by remote workers over HTTP only; the node's dispatcher never leases it. */
  remote: boolean;
  /** For a remote handler, a stub that throws: nothing in the node calls it. */
  run: NonNullable<HandlerDefinition['run']>;
  /** `thread`: run in a worker thread with `memoryMb` of heap and a hard timeout that terminates it. */
  isolation: 'inline' | 'thread';
  memoryMb: number;
  quarantine: QuarantinePolicy;
  breaker: BreakerPolicy;
  /** Dispatch rate limit; `key` as for `concurrencyKey` (null: one limit for the handler). */
  rateLimit: { limit: number; periodMs: number; key: string | null } | null;
}

export interface ResolvedConfig {
  handlers: Map<string, ResolvedHandler>;
  /** Every declared queue, every queue a handler uses, and `default` always. */
  queues: Map<string, QueuePolicy>;
  /** Lease caps per tenant (cluster-wide, per queue, overrides) and per remote worker id and work key (core/lease-caps.ts). */
  flow: FlowCaps;
  server: {
    host: string;
    port: number;
    /** Whole request (headers and body) must arrive within this; slow bodies are cut off with 408. */
    requestTimeoutMs: number;
    headersTimeoutMs: number;
    keepAliveTimeoutMs: number;
    /** Socket inactivity while an answer is pending; 0 (default) off, else at least 65 s (above the longest lease waitMs). SSE streams opt out. */
    connectionTimeoutMs: number;
    /** Connections beyond this are closed as they arrive. */
    maxConnections: number;
    /** Proxies (addresses or CIDRs) whose X-Forwarded-For names the client; empty: the socket's peer is the client. */
    trustProxy: string[];
    /** HTTPS with these PEM files; null: plain HTTP. Reloaded when they change and on SIGHUP. */
    tls: { certFile: string; keyFile: string } | null;
  };
  databaseUrl: string;
  /** `maxJsonDepth`/`maxJsonMembers`: request JSON beyond them is refused with 422 before it is parsed into objects. */
  limits: { maxPayloadBytes: number; timeoutMs: number; memoryMb: number; maxJsonDepth: number; maxJsonMembers: number };
  /** Replacement of crashed handler threads: exponential backoff from `restartInitialMs`, capped. */
  threads: { restartInitialMs: number; restartMaxMs: number };
  /** Durable steps: what one job may store (core/durable.ts); past a limit the step fails without writing. */
  durable: DurableLimits;
  /** The built-in webhook action: SSRF allowance, request timeout, attempts, per-host breaker. */
  webhooks: { allowPrivateNetworks: boolean; timeoutMs: number; maxAttempts: number; breaker: BreakerPolicy };
  /** Settings of the other built-in actions (the `webhooks` settings apply to them too). */
  actions: { telegramApiUrl: string };
  shutdown: { graceMs: number };
  retention: { succeededMs: number; deadMs: number; eventsMs: number; intervalMs: number; batchSize: number };
  poisonAfter: number;
  /** PostgreSQL engine: the schema holding Drover's tables, connections per node, and the deadlines of every store call. */
  postgres: { schema: string; poolMax: number; statementTimeoutMs: number; queryTimeoutMs: number; connectTimeoutMs: number; keepAliveIdleMs: number };
  /** Node liveness on a shared store: heartbeat interval, and silence after which peers reclaim a node's jobs. */
  cluster: { heartbeatMs: number; deadNodeMs: number };
  log: { level: LogLevel };
  /** A separate listener for `/metrics` and the probes; port null: they are served on the API listener. */
  metrics: { host: string; port: number | null; onApiPort: boolean };
  /** Failed authentications per client address and window before that address gets 429 instead of a store lookup. */
  auth: { maxFailures: number; failureWindowMs: number };
  sqlite: { synchronous: 'FULL' | 'NORMAL' };
  /** Per API key and route; `routes` overrides `max` for the routes it names (`"POST /v1/events"`). */
  rateLimit: { enabled: boolean; windowMs: number; max: number; routes: Record<string, number> };
  stream: { heartbeatMs: number; bufferSize: number; retentionMs: number };
  /** In-process backups; `everyMs` null means off. Relative `dir` is inside the data directory. */
  rollout: { channel: string; channels: string[]; featureGates: Record<string, boolean> };
  backup: {
    everyMs: number | null;
    dir: string;
    keepDaily: number;
    keepWeekly: number;
    keepMonthly: number;
    verify: boolean;
    remote: { url: string; endpoint: string | null; region: string | null; forcePathStyle: boolean | null; accessKeyIdFile: string | null; secretAccessKeyFile: string | null } | null;
  };
  /** JSONL export of the audit trail; relative `exportDir` is inside the data directory. */
  audit: { exportDir: string; keepFiles: number; exportIntervalMs: number };
  /** The web console at `/console` and its sign-in sessions (docs/configuration.md). */
  console: { enabled: boolean; sessionTtlMs: number };
  /** Payload fields with an expression index for job search (built at start), as paths: [['customer', 'id']]. */
  search: { payloadIndexes: string[][] };
}

// ---------------------------------------------------------------- resolve

/**
 * Validate `raw` (the config file's default export), apply `env` and
 * `overrides`, and fill in every default. Throws `DroverError('config_invalid')`
 * listing every problem, one per line, each naming its key path (or variable)
 * and the expected value; the list is also in `extensions.errors`.
 *
 * @example
 * const config = resolveConfig({ handlers: [{ name: 'hello', on: 'user.created', run: async () => {} }] }, process.env, { port: 8080 });
 * config.server.port; // 8080
 * config.handlers.get('hello')?.maxAttempts; // 5
 */
export function resolveConfig(
  raw: unknown,
  env: Readonly<Record<string, string | undefined>>,
  overrides: ConfigOverrides = {},
): ResolvedConfig {
  const issues: ConfigIssue[] = [];
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) issues.push(...parsed.error.issues.flatMap((issue) => fromZod(issue, raw)));

  const triggers = new Map<number, ResolvedTrigger[]>();
  const handlers = isRecord(raw) && Array.isArray(raw.handlers) ? (raw.handlers as unknown[]) : [];
  const seen = new Map<string, number>();
  handlers.forEach((h, i) => {
    if (!isRecord(h)) return;
    const at = `handlers[${i}]`;
    triggers.set(i, checkTriggers(h.on, `${at}.on`, issues));
    const tz = typeof h.cronTimezone === 'string' && isValidTimezone(h.cronTimezone) ? h.cronTimezone : 'UTC';
    checkCron(h.cron, tz, `${at}.cron`, issues);
    if (h.remote === true && h.run !== undefined) {
      issues.push({ path: `${at}.run`, message: 'a remote handler (remote: true) has no run; remote workers run its jobs' });
    } else if (h.remote !== true && h.run === undefined) {
      issues.push({ path: `${at}.run`, message: 'expected a function run(ctx), but it is missing (or set remote: true if remote workers run this handler)' });
    }
    if (typeof h.name === 'string') {
      const first = seen.get(h.name);
      if (first === undefined) seen.set(h.name, i);
      else issues.push({ path: `${at}.name`, message: `duplicate handler name "${h.name}" (also handlers[${first}].name)` });
    }
  });
  if (isRecord(raw) && isRecord(raw.queues)) {
    for (const queue of Object.keys(raw.queues)) {
      if (!NAME_RE.test(queue)) issues.push({ path: `queues${formatKey(queue)}`, message: `invalid queue name; ${NAME_EXPECTED}` });
    }
  }
  if (isRecord(raw) && isRecord(raw.cluster)) {
    // Peers must not declare a node dead between two of its heartbeats.
    const beat = typeof raw.cluster.heartbeatMs === 'number' ? raw.cluster.heartbeatMs : DEFAULTS.cluster.heartbeatMs;
    const dead = typeof raw.cluster.deadNodeMs === 'number' ? raw.cluster.deadNodeMs : DEFAULTS.cluster.deadNodeMs;
    if (dead < 2 * beat) issues.push({ path: 'cluster.deadNodeMs', message: `expected at least twice cluster.heartbeatMs (${2 * beat}), got ${dead}` });
  }
  if (isRecord(raw) && isRecord(raw.server)) {
    // Node refuses a header timeout longer than the request timeout that contains it.
    const request = typeof raw.server.requestTimeoutMs === 'number' ? raw.server.requestTimeoutMs : DEFAULTS.server.requestTimeoutMs;
    const headers = typeof raw.server.headersTimeoutMs === 'number' ? raw.server.headersTimeoutMs : DEFAULTS.server.headersTimeoutMs;
    if (headers > request) issues.push({ path: 'server.headersTimeoutMs', message: `expected at most server.requestTimeoutMs (${request}), got ${headers}` });
    // A socket is silent while a lease long-polls (`waitMs`, at most 60 s): a shorter idle timeout would cut it.
    const idle = raw.server.connectionTimeoutMs;
    if (typeof idle === 'number' && idle > 0 && idle < LEASE_LIMITS.waitMs.max + 5_000) {
      issues.push({ path: 'server.connectionTimeoutMs', message: `expected 0 (off) or at least ${LEASE_LIMITS.waitMs.max + 5_000} (above the longest lease waitMs), got ${idle}` });
    }
  }
  if (isRecord(raw) && isRecord(raw.rollout) && typeof raw.rollout.channel === 'string') {
    const channels = Array.isArray(raw.rollout.channels) ? (raw.rollout.channels as unknown[]) : [...DEFAULT_CHANNELS];
    if (!channels.includes(raw.rollout.channel)) {
      issues.push({ path: 'rollout.channel', message: `"${raw.rollout.channel}" is not one of the channels (${channels.join(', ')}); name one of them, or list yours in rollout.channels` });
    }
  }
  if (isRecord(raw) && isRecord(raw.rateLimit) && isRecord(raw.rateLimit.routes)) {
    for (const route of Object.keys(raw.rateLimit.routes)) {
      if (!ROUTE_KEY_RE.test(route)) issues.push({ path: `rateLimit.routes${formatKey(route)}`, message: `invalid route; ${ROUTE_KEY_EXPECTED}` });
    }
  }

  // Zod reports by schema order and the extra checks come after; regroup so each handler's problems sit together.
  sortByHandler(issues);
  const fromEnv = readEnv(env, issues);
  const fromFlags = readOverrides(overrides, issues);
  for (const [path, url] of [['databaseUrl', isRecord(raw) ? raw.databaseUrl : undefined], ['DROVER_DATABASE_URL', fromEnv.databaseUrl], ['overrides.databaseUrl', fromFlags.databaseUrl]] as const) {
    if (typeof url !== 'string' || url === '') continue;
    const parsedUrl = parseStoreUrl(url);
    if ('problem' in parsedUrl) issues.push({ path, message: parsedUrl.problem });
  }

  if (issues.length > 0 || !parsed.success) {
    const lines = issues.map((i) => `${i.path}: ${i.message}`);
    throw new DroverError('config_invalid', `invalid configuration (${lines.length} problem${lines.length === 1 ? '' : 's'}):\n  ${lines.join('\n  ')}`, {
      extensions: { errors: issues },
    });
  }
  return build(parsed.data, triggers, { ...fromEnv, ...fromFlags });
}

function build(cfg: ParsedConfig, triggers: Map<number, ResolvedTrigger[]>, over: Settings): ResolvedConfig {
  const limits = {
    maxPayloadBytes: cfg.limits?.maxPayloadBytes ?? DEFAULTS.limits.maxPayloadBytes,
    timeoutMs: cfg.limits?.timeoutMs ?? DEFAULTS.limits.timeoutMs,
    memoryMb: cfg.limits?.memoryMb ?? DEFAULTS.limits.memoryMb,
    maxJsonDepth: cfg.limits?.maxJsonDepth ?? DEFAULTS.limits.maxJsonDepth,
    maxJsonMembers: cfg.limits?.maxJsonMembers ?? DEFAULTS.limits.maxJsonMembers,
  };
  const queues = new Map<string, QueuePolicy>([['default', resolveQueue(undefined, DEFAULTS.queue.maxDepth)]]);
  for (const [queue, def] of Object.entries(cfg.queues ?? {})) queues.set(queue, resolveQueue(def, DEFAULTS.queue.maxDepth));

  const handlers = new Map<string, ResolvedHandler>();
  const d = DEFAULTS.handler;
  cfg.handlers.forEach((h, i) => {
    const queue = h.queue ?? d.queue;
    if (!queues.has(queue)) queues.set(queue, resolveQueue(undefined, DEFAULTS.queue.maxDepth));
    handlers.set(h.name, {
      name: h.name,
      queue,
      concurrency: h.concurrency ?? d.concurrency,
      concurrencyKey: h.concurrencyKey ?? null,
      concurrencyLimit: h.concurrencyLimit ?? d.concurrencyLimit,
      priority: h.priority ?? d.priority,
      maxAttempts: h.retry?.maxAttempts ?? d.retry.maxAttempts,
      backoff: {
        initialMs: h.retry?.backoff?.initialMs ?? d.retry.backoff.initialMs,
        maxMs: h.retry?.backoff?.maxMs ?? d.retry.backoff.maxMs,
        factor: h.retry?.backoff?.factor ?? d.retry.backoff.factor,
        jitter: h.retry?.backoff?.jitter ?? d.retry.backoff.jitter,
      },
      timeoutMs: h.limits?.timeoutMs ?? h.timeoutMs ?? limits.timeoutMs,
      triggers: triggers.get(i) ?? [],
      cron: h.cron === undefined ? [] : typeof h.cron === 'string' ? [h.cron] : (h.cron as string[]),
      cronTimezone: h.cronTimezone ?? d.cronTimezone,
      remote: h.remote === true,
      run: h.run ?? remoteStub(h.name),
      isolation: h.isolation ?? d.isolation,
      memoryMb: h.limits?.memoryMb ?? limits.memoryMb,
      quarantine: { ...d.quarantine, ...definedOnly(h.quarantine ?? {}) },
      breaker: { ...d.breaker, ...definedOnly(h.breaker ?? {}) },
      rateLimit: h.rateLimit ? { limit: h.rateLimit.limit, periodMs: h.rateLimit.periodMs, key: h.rateLimit.key ?? null } : null,
    });
  });

  return {
    handlers,
    queues,
    flow: resolveFlow(cfg),
    server: {
      host: over.host ?? cfg.server?.host ?? DEFAULTS.server.host,
      port: over.port ?? cfg.server?.port ?? DEFAULTS.server.port,
      requestTimeoutMs: cfg.server?.requestTimeoutMs ?? DEFAULTS.server.requestTimeoutMs,
      headersTimeoutMs: cfg.server?.headersTimeoutMs ?? DEFAULTS.server.headersTimeoutMs,
      keepAliveTimeoutMs: cfg.server?.keepAliveTimeoutMs ?? DEFAULTS.server.keepAliveTimeoutMs,
      connectionTimeoutMs: cfg.server?.connectionTimeoutMs ?? DEFAULTS.server.connectionTimeoutMs,
      maxConnections: cfg.server?.maxConnections ?? DEFAULTS.server.maxConnections,
      trustProxy: [...(cfg.server?.trustProxy ?? [])],
      tls: cfg.server?.tls ? { certFile: cfg.server.tls.certFile, keyFile: cfg.server.tls.keyFile } : null,
    },
    databaseUrl: over.databaseUrl ?? cfg.databaseUrl ?? DEFAULTS.databaseUrl,
    limits,
    threads: { ...DEFAULTS.threads, ...definedOnly(cfg.threads ?? {}) },
    durable: { ...DEFAULTS.durable, ...definedOnly(cfg.durable ?? {}) },
    webhooks: {
      allowPrivateNetworks: cfg.webhooks?.allowPrivateNetworks ?? DEFAULTS.webhooks.allowPrivateNetworks,
      timeoutMs: cfg.webhooks?.timeoutMs ?? DEFAULTS.webhooks.timeoutMs,
      maxAttempts: cfg.webhooks?.maxAttempts ?? DEFAULTS.webhooks.maxAttempts,
      breaker: { ...DEFAULTS.handler.breaker, ...definedOnly(cfg.webhooks?.breaker ?? {}) },
    },
    actions: { telegramApiUrl: (cfg.actions?.telegramApiUrl ?? DEFAULTS.actions.telegramApiUrl).replace(/\/+$/, '') },
    shutdown: { graceMs: over.graceMs ?? cfg.shutdown?.graceMs ?? DEFAULTS.shutdown.graceMs },
    retention: { ...DEFAULTS.retention, ...definedOnly(cfg.retention ?? {}) },
    poisonAfter: cfg.poisonAfter ?? DEFAULTS.poisonAfter,
    postgres: { ...DEFAULTS.postgres, ...definedOnly(cfg.postgres ?? {}), schema: over.pgSchema ?? cfg.postgres?.schema ?? DEFAULTS.postgres.schema },
    cluster: { ...DEFAULTS.cluster, ...definedOnly(cfg.cluster ?? {}) },
    log: { level: over.logLevel ?? cfg.log?.level ?? DEFAULTS.log.level },
    metrics: {
      host: over.metricsHost ?? cfg.metrics?.host ?? DEFAULTS.metrics.host,
      port: over.metricsPort ?? cfg.metrics?.port ?? null,
      onApiPort: cfg.metrics?.onApiPort ?? DEFAULTS.metrics.onApiPort,
    },
    auth: { ...DEFAULTS.auth, ...definedOnly(cfg.auth ?? {}) },
    sqlite: { synchronous: cfg.sqlite?.synchronous ?? DEFAULTS.sqlite.synchronous },
    rateLimit: { ...DEFAULTS.rateLimit, ...definedOnly({ ...cfg.rateLimit, routes: undefined }), routes: { ...cfg.rateLimit?.routes } },
    stream: { ...DEFAULTS.stream, ...definedOnly(cfg.stream ?? {}) },
    rollout: resolveRollout(cfg.rollout),
    backup: {
      everyMs: parseDuration(cfg.backup?.every ?? DEFAULTS.backup.every),
      dir: cfg.backup?.dir ?? DEFAULTS.backup.dir,
      keepDaily: cfg.backup?.keepDaily ?? DEFAULTS.backup.keepDaily,
      keepWeekly: cfg.backup?.keepWeekly ?? DEFAULTS.backup.keepWeekly,
      keepMonthly: cfg.backup?.keepMonthly ?? DEFAULTS.backup.keepMonthly,
      verify: cfg.backup?.verify ?? true,
      remote: cfg.backup?.remote
        ? {
            url: cfg.backup.remote.url,
            endpoint: cfg.backup.remote.endpoint ?? null,
            region: cfg.backup.remote.region ?? null,
            forcePathStyle: cfg.backup.remote.forcePathStyle ?? null,
            accessKeyIdFile: cfg.backup.remote.accessKeyIdFile ?? null,
            secretAccessKeyFile: cfg.backup.remote.secretAccessKeyFile ?? null,
          }
        : null,
    },
    audit: { ...DEFAULTS.audit, ...definedOnly(cfg.audit ?? {}) },
    console: { ...DEFAULTS.console, ...definedOnly(cfg.console ?? {}) },
    search: { payloadIndexes: [...new Set(cfg.search?.payloadIndexes ?? [])].map((field) => field.split('.')) },
  };
}

function resolveFlow(cfg: ParsedConfig): FlowCaps {
  const perQueue = new Map<string, number>();
  for (const [queue, def] of Object.entries(cfg.queues ?? {})) if (def.tenantMaxActiveLeases !== undefined) perQueue.set(queue, def.tenantMaxActiveLeases);
  return {
    tenants: {
      maxActiveLeases: cfg.flow?.tenants?.maxActiveLeases ?? null,
      overrides: new Map(Object.entries(cfg.flow?.tenants?.overrides ?? {})),
      perQueue,
    },
    workers: {
      maxActiveLeases: cfg.flow?.workers?.maxActiveLeases ?? null,
      keyMaxActiveLeases: cfg.flow?.workers?.keyMaxActiveLeases ?? null,
      keys: new Map(
        Object.entries(cfg.flow?.workers?.keys ?? {}).map(([key, caps]) => [key, { maxActiveLeases: caps.maxActiveLeases ?? null, maxWorkerLeases: caps.maxWorkerLeases ?? null }]),
      ),
    },
  };
}

function remoteStub(name: string): NonNullable<HandlerDefinition['run']> {
  return () => {
    throw new Error(`handler "${name}" is remote: only remote workers run it (the dispatcher never leases it)`);
  };
}

// ---------------------------------------------------------------- checks beyond the schema

/** `on`: a pattern string, `{ event, filter?, debounce? | throttle? | batch? }`, or an array of either. */
function checkTriggers(on: unknown, path: string, issues: ConfigIssue[]): ResolvedTrigger[] {
  if (on === undefined) return [];
  const specs = Array.isArray(on) ? on.map((spec, j) => [spec, `${path}[${j}]`] as const) : [[on, path] as const];
  const out: ResolvedTrigger[] = [];
  for (const [spec, at] of specs) {
    if (typeof spec === 'string') {
      const t = trigger(spec, undefined, at, at, issues);
      if (t) out.push(t);
    } else if (isRecord(spec)) {
      for (const key of Object.keys(spec)) {
        if (!TRIGGER_KEYS.includes(key)) issues.push({ path: `${at}.${key}`, message: `unknown key; allowed keys: ${TRIGGER_KEYS.join(', ')}` });
      }
      if (typeof spec.event !== 'string') {
        issues.push({ path: `${at}.event`, message: `expected an event name or pattern, ${got(spec.event)}` });
        continue;
      }
      const t = trigger(spec.event, spec.filter, `${at}.event`, `${at}.filter`, issues);
      const control = checkTriggerControl(spec, at, (path, message) => issues.push({ path, message }));
      if (t) out.push({ ...t, control });
    } else {
      issues.push({ path: at, message: `expected an event pattern string or { event, filter }, ${got(spec)}` });
    }
  }
  return out;
}

const TRIGGER_KEYS = ['event', 'filter', 'debounce', 'throttle', 'batch'];

function trigger(pattern: string, filter: unknown, patternAt: string, filterAt: string, issues: ConfigIssue[]): ResolvedTrigger | null {
  let matches: ((name: string) => boolean) | null = null;
  let compiled: ((data: unknown) => boolean) | null = null;
  try {
    matches = compilePattern(pattern);
  } catch (error) {
    issues.push({ path: patternAt, message: messageOf(error) });
  }
  if (filter !== undefined) {
    try {
      compiled = compileFilter(filter, filterAt);
    } catch (error) {
      // compileFilter names the exact spot inside the filter (e.g. `…filter.amount`).
      const ext = error instanceof DroverError ? error.extensions : {};
      issues.push({
        path: typeof ext.path === 'string' ? ext.path : filterAt,
        message: typeof ext.problem === 'string' ? ext.problem : messageOf(error),
      });
      return null;
    }
  }
  return matches === null ? null : { pattern, matches, filter: compiled, control: null };
}

function checkCron(cron: unknown, tz: string, path: string, issues: ConfigIssue[]): void {
  if (cron === undefined) return;
  const list = Array.isArray(cron) ? cron.map((c, j) => [c, `${path}[${j}]`] as const) : [[cron, path] as const];
  for (const [expr, at] of list) {
    if (typeof expr !== 'string') {
      issues.push({ path: at, message: `expected a cron expression string (or an array of them), ${got(expr)}` });
      continue;
    }
    try {
      compileCron(expr, tz);
    } catch (error) {
      issues.push({ path: at, message: messageOf(error) });
    }
  }
}

// ---------------------------------------------------------------- routing

/**
 * The concurrency key for a job of `handler`, or null when the handler has
 * none or the value is missing (such a job is limited only by `concurrency`).
 * Strings are used as they are, other scalars stringified, objects as JSON.
 *
 * @example
 * // handler declared with concurrencyKey: 'payload.customer.id'
 * concurrencyKeyFor(handler, { customer: { id: 42 } }, null); // '42'
 * // handler declared with concurrencyKey: 'tenant'
 * concurrencyKeyFor(handler, {}, 'acme'); // 'acme'
 */
export function concurrencyKeyFor(handler: ResolvedHandler, payload: unknown, tenant: string | null): string | null {
  const key = handler.concurrencyKey;
  if (key === null) return null;
  if (key === 'tenant') return tenant === null || tenant === '' ? null : tenant;
  const { present, value } = lookupPath(payload, key.split('.').slice(1));
  if (!present || value === null) return null;
  if (typeof value === 'string') return value === '' ? null : value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  return JSON.stringify(value) ?? null;
}

/**
 * The handlers an event goes to: each handler with a trigger whose pattern
 * matches the event name and whose filter (if any) passes, once, in order.
 *
 * @example
 * routeEvent(config.handlers.values(), { name: 'order.created', data: { amount: 250 } }).map((h) => h.name);
 */
export function routeEvent(handlers: Iterable<ResolvedHandler>, event: { name: string; data: unknown }): ResolvedHandler[] {
  return routeEventToTriggers(handlers, event).map((route) => route.handler);
}

/**
 * As `routeEvent`, with the trigger that took the event for each handler
 * (the first of its triggers that matches: its control applies) and that
 * trigger's position in the handler's `on`.
 *
 * @example
 * routeEventToTriggers(config.handlers.values(), { name: 'order.created', data: {} })[0]?.trigger.control; // null or { kind: 'batch', ... }
 */
export function routeEventToTriggers(
  handlers: Iterable<ResolvedHandler>,
  event: { name: string; data: unknown },
): Array<{ handler: ResolvedHandler; trigger: ResolvedTrigger; index: number }> {
  const out: Array<{ handler: ResolvedHandler; trigger: ResolvedTrigger; index: number }> = [];
  for (const handler of handlers) {
    const index = handler.triggers.findIndex((t) => t.matches(event.name) && (t.filter === null || t.filter(event.data)));
    if (index >= 0) out.push({ handler, trigger: handler.triggers[index]!, index });
  }
  return out;
}

// ---------------------------------------------------------------- helpers

function sortByHandler(issues: ConfigIssue[]): void {
  const rank = (path: string) => {
    const m = /^handlers\[(\d+)\]/.exec(path);
    return m ? Number(m[1]) : Number.MAX_SAFE_INTEGER;
  };
  issues.sort((a, b) => rank(a.path) - rank(b.path)); // Array#sort is stable
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Without a channel, a node is `production` (or, with the operator's own stages, the last of them). */
function resolveRollout(rollout: ParsedConfig['rollout']): ResolvedConfig['rollout'] {
  const channels = rollout?.channels ?? [...DEFAULT_CHANNELS];
  const channel = rollout?.channel ?? (channels.includes(DEFAULT_CHANNEL) ? DEFAULT_CHANNEL : channels[channels.length - 1]!);
  return { channel, channels, featureGates: { ...(rollout?.featureGates ?? {}) } };
}
