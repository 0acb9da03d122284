/**
 * Configuration: validate the user's config (the default export of their
 * config file), apply environment variables and CLI overrides, and resolve
 * every default in one pass. Validation collects every problem before it
 * throws, so a broken config is fixed in one edit, not one restart per typo.
 *
 * Precedence, highest first: overrides (CLI flags) > `DROVER_*` env > config file > `DEFAULTS`.
 * `docs/configuration.md` documents every key; a test keeps it in step with `DEFAULTS`.
 * This module holds the resolved types and the entry points; the parts are
 * config-schema.ts (shape), config-checks.ts (checks beyond the schema),
 * config-sources.ts (env, flags), config-defaults.ts and config-resolve.ts.
 */
import { DroverError } from './errors.js';
import { parseStoreUrl } from './store-url.js';
import { lookupPath } from './filter.js';
import type { QueuePolicy } from './queue-policy.js';
import type { FlowCaps } from './lease-caps.js';
import type { BreakerPolicy } from './breaker.js';
import type { BackoffPolicy, HandlerDefinition } from './handler.js';
import type { QuarantinePolicy } from './quarantine.js';
import type { TriggerControl } from './trigger-control.js';
import type { DurableLimits } from './durable.js';
import { readEnv, readOverrides, type ConfigOverrides } from './config-sources.js';
import { configSchema, fromZod, type ConfigIssue, type LogLevel } from './config-schema.js';
import { checkBeyondSchema, isRecord } from './config-checks.js';
import { resolveValidated } from './config-resolve.js';

export { LOG_LEVELS, type ConfigIssue, type LogLevel } from './config-schema.js';
export { ENV_VARS, type ConfigOverrides } from './config-sources.js';
export { DEFAULTS } from './config-defaults.js';

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
  const parsed = configSchema().safeParse(raw);
  if (!parsed.success) issues.push(...parsed.error.issues.flatMap((issue) => fromZod(issue, raw)));

  const triggers = checkBeyondSchema(raw, issues);

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
  return resolveValidated(parsed.data, triggers, { ...fromEnv, ...fromFlags });
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
