/**
 * The zod schema for the config file, and the translation of zod's issues
 * into messages that name the key path, what was expected and what was found
 * (`handlers[1].concurrency: expected an integer ≥ 1, got 0`). Checks that
 * need more than one field (duplicate names, cron with its time zone,
 * trigger patterns and filters) live in `config-checks.ts`.
 */
import type { z as Zod } from 'zod';
import { MAX_LEASE_CAP, queueSchema } from './config-queues.js';
import { isValidTimezone } from './cron.js';
import type { HandlerDefinition } from './handler.js';
import { PAYLOAD_FIELD_RE } from './payload-filter.js';
import { releaseZod, zod } from './zod.js';

const PAYLOAD_FIELD_EXPECTED = 'expected a payload field: names of letters, digits, "_" or "-" joined by "." (at most 8), such as "customer.id"';

/** setTimeout fires at once for delays above 2^31-1 ms; any value used as a timer is capped here. */
export const MAX_TIMER_MS = 2_147_483_647;
/**
 * The deepest JSON the API accepts, whatever `limits.maxJsonDepth` says: read
 * paths replace stored values nested deeper than this (rows written before the
 * cap existed) rather than fail to serialise them.
 */
export const MAX_JSON_DEPTH = 512;
/**
 * As the API's job schema allows: the lease order indexes `run_at - priority ×
 * priorityMs` as a 64-bit integer, and with the strict stamp (2^40) a larger
 * priority would overflow it (PostgreSQL refuses the insert).
 */
const MAX_PRIORITY = 1_000_000;
const KEY_REF_EXPECTED = 'expected an API key id ("key_…") or name, 1-200 characters';
const TENANT_EXPECTED = 'expected a tenant name of 1-200 characters (as events and jobs carry it)';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** One configuration problem: where, and what was expected. */
export interface ConfigIssue {
  path: string;
  message: string;
}

/** Handler and queue names: safe in URLs, metric labels and log lines without escaping. */
export const NAME_RE = /^[A-Za-z0-9_.:-]{1,100}$/;
export const NAME_EXPECTED = 'expected 1-100 characters from letters, digits, "_", ".", ":", "-"';
const CONCURRENCY_KEY_RE = /^(tenant|payload(\.[^.]+)+)$/;

const DURATION_RE = /^(\d+)(ms|s|m|h|d)$/;
const DURATION_EXPECTED = 'expected "off", a duration from 1 minute to 24 days such as "30m", "6h", "24h" or "7d", or milliseconds';
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/**
 * A duration such as `"24h"` in milliseconds; null for `"off"`, NaN for anything else.
 *
 * @example
 * parseDuration('6h'); // 21600000
 * parseDuration(90_000); // 90000
 * parseDuration('off'); // null
 */
export function parseDuration(value: string | number): number | null {
  if (typeof value === 'number') return value;
  if (value === 'off') return null;
  const match = DURATION_RE.exec(value);
  return match ? Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS] : Number.NaN;
}

/** PostgreSQL schema names go into search_path unquoted. */
export const PG_SCHEMA_RE = /^[a-z_][a-z0-9_]{0,62}$/;
export const PG_SCHEMA_EXPECTED = 'expected a lower-case identifier: a-z, 0-9 and "_", not starting with a digit, at most 63 characters';

/** `rateLimit.routes` keys (checked in config-checks.ts): a route as the API declares it, e.g. `GET /v1/jobs/:id`. */
export const ROUTE_KEY_RE = /^(GET|POST|PUT|PATCH|DELETE) \/[A-Za-z0-9_.:\/-]*$/;
export const ROUTE_KEY_EXPECTED = 'expected a route such as "POST /v1/events" (method, one space, path as in docs/api.md)';

function int(min: number, max?: number) {
  const z = zod();
  const error = max === undefined ? `expected an integer ≥ ${min}` : `expected an integer from ${min} to ${max}`;
  const schema = z.number({ error }).int({ error }).min(min, { error });
  return max === undefined ? schema : schema.max(max, { error });
}

function text(error: string) {
  const z = zod();
  return z.string({ error }).min(1, { error });
}

function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  const z = zod();
  return z.enum(values, { error: `expected one of ${values.map((v) => `"${v}"`).join(', ')}` });
}

function name() {
  const z = zod();
  return z.string({ error: NAME_EXPECTED }).regex(NAME_RE, { error: NAME_EXPECTED });
}

/** A strict object whose unknown-key and wrong-type errors say what is allowed. */
const BASE_URL_EXPECTED = 'expected an http(s) URL without credentials, query or fragment, e.g. "https://api.telegram.org"';

/** An API base URL: http(s), no userinfo (credentials belong in secret references), no query or fragment. */
function isBaseUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && !url.username && !url.password && !url.search && !url.hash;
  } catch {
    return false;
  }
}

function strict<S extends Zod.ZodRawShape>(shape: S, what: string) {
  const z = zod();
  const allowed = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (issue) => (issue.code === 'unrecognized_keys' ? `allowed keys: ${allowed}` : `expected ${what}`),
  });
}

function breakerSchema() {
  const z = zod();
  return strict(
    {
      failures: int(1).optional(),
      ratio: z.number({ error: 'expected a number in (0, 1]' }).gt(0, { error: 'expected a number in (0, 1]' }).max(1, { error: 'expected a number in (0, 1]' }).optional(),
      minRequests: int(1).optional(),
      window: int(1, 10_000).optional(),
      coolDownMs: int(1, MAX_TIMER_MS).optional(),
    },
    'an object { failures, ratio, minRequests, window, coolDownMs }',
  ).optional();
}

function handlerSchema() {
  const z = zod();
  return strict(
    {
      name: name(),
      on: z.unknown().optional(), // checked in checkTriggers: the messages need the full path
      queue: name().optional(),
      concurrency: int(1).optional(),
      concurrencyKey: z
        .string({ error: 'expected "tenant" or "payload.<path>"' })
        .regex(CONCURRENCY_KEY_RE, { error: 'expected "tenant" or "payload.<path>" (e.g. "payload.customerId")' })
        .max(200, { error: 'expected at most 200 characters' })
        .optional(),
      concurrencyLimit: int(1).optional(),
      priority: int(-MAX_PRIORITY, MAX_PRIORITY).optional(),
      retry: strict(
        {
          maxAttempts: int(1).optional(),
          backoff: strict(
            {
              initialMs: int(0).optional(),
              maxMs: int(0).optional(),
              factor: z
                .number({ error: 'expected a number ≥ 1' })
                .min(1, { error: 'expected a number ≥ 1' })
                .optional(),
              jitter: oneOf(['full', 'equal', 'none']).optional(),
            },
            'an object { initialMs, maxMs, factor, jitter }',
          ).optional(),
        },
        'an object { maxAttempts, backoff }',
      ).optional(),
      timeoutMs: int(1, MAX_TIMER_MS).optional(),
      cron: z.unknown().optional(), // checked in checkCron: it needs the handler's time zone
      cronTimezone: z
        .string({ error: 'expected an IANA time zone such as "UTC" or "Europe/Berlin"' })
        .refine(isValidTimezone, { error: 'expected an IANA time zone such as "UTC" or "Europe/Berlin"' })
        .optional(),
      // Required unless `remote: true`; config-checks.ts checks the pair, with the handler's path.
      run: z
        .custom<NonNullable<HandlerDefinition['run']>>((v) => typeof v === 'function', {
          error: 'expected a function run(ctx)',
        })
        .optional(),
      remote: z.boolean({ error: 'expected true or false' }).optional(),
      // Supervision (docs/configuration.md "Supervision"): isolation, limits, quarantine, breaker, dispatch rate.
      isolation: oneOf(['inline', 'thread']).optional(),
      limits: strict({ timeoutMs: int(1, MAX_TIMER_MS).optional(), memoryMb: int(16, 65_536).optional() }, 'an object { timeoutMs, memoryMb }').optional(),
      quarantine: strict({ failures: int(1).optional(), windowMs: int(1, MAX_TIMER_MS).optional() }, 'an object { failures, windowMs }').optional(),
      breaker: breakerSchema(),
      rateLimit: strict(
        {
          limit: int(1),
          periodMs: int(1, MAX_TIMER_MS),
          key: z
            .string({ error: 'expected "tenant" or "payload.<path>"' })
            .regex(CONCURRENCY_KEY_RE, { error: 'expected "tenant" or "payload.<path>" (e.g. "payload.customerId")' })
            .max(200, { error: 'expected at most 200 characters' })
            .optional(),
        },
        'an object { limit, periodMs, key }',
      ).optional(),
    },
    'a handler object { name, run, ... }',
  );
}

/** The schema `configSchema()` returns, built anew after a release. */
function buildConfigSchema() {
  const z = zod();
  return strict(
    {
      handlers: z.array(handlerSchema(), { error: 'expected an array of handlers' }),
      queues: z
        .record(z.string(), queueSchema(), {
          error: 'expected an object mapping queue names to { maxDepth, weights, ageUnitMs, fairness }',
        })
        .optional(),
      server: strict(
        {
          host: text('expected a non-empty string').optional(),
          port: int(0, 65535).optional(),
          // Connection hardening (docs/configuration.md "HTTP server and TLS"); config-checks.ts checks headersTimeoutMs ≤ requestTimeoutMs.
          requestTimeoutMs: int(1000, MAX_TIMER_MS).optional(),
          headersTimeoutMs: int(1000, MAX_TIMER_MS).optional(),
          keepAliveTimeoutMs: int(1, MAX_TIMER_MS).optional(),
          connectionTimeoutMs: int(0, MAX_TIMER_MS).optional(),
          maxConnections: int(1).optional(),
          trustProxy: z
            .array(text('expected an IP address or CIDR such as "10.0.0.0/8"'), { error: 'expected an array of proxy addresses or CIDRs' })
            .optional(),
          tls: strict(
            { certFile: text('expected a non-empty file path'), keyFile: text('expected a non-empty file path') },
            'an object { certFile, keyFile }',
          ).optional(),
        },
        'an object { host, port, requestTimeoutMs, headersTimeoutMs, keepAliveTimeoutMs, connectionTimeoutMs, maxConnections, trustProxy, tls }',
      ).optional(),
      databaseUrl: text('expected a non-empty string (postgres:// URL or SQLite file path)').optional(),
      limits: strict(
        {
          maxPayloadBytes: int(1).optional(),
          timeoutMs: int(1, MAX_TIMER_MS).optional(),
          memoryMb: int(16, 65_536).optional(),
          maxJsonDepth: int(2, MAX_JSON_DEPTH).optional(),
          maxJsonMembers: int(1).optional(),
        },
        'an object { maxPayloadBytes, timeoutMs, memoryMb, maxJsonDepth, maxJsonMembers }',
      ).optional(),
      shutdown: strict({ graceMs: int(0, MAX_TIMER_MS).optional() }, 'an object { graceMs }').optional(),
      retention: strict(
        {
          succeededMs: int(0).optional(),
          deadMs: int(0).optional(),
          eventsMs: int(0).optional(),
          intervalMs: int(1000, MAX_TIMER_MS).optional(),
          batchSize: int(1).optional(),
        },
        'an object { succeededMs, deadMs, eventsMs, intervalMs, batchSize }',
      ).optional(),
      poisonAfter: int(1).optional(),
      postgres: strict(
        {
          schema: z.string({ error: PG_SCHEMA_EXPECTED }).regex(PG_SCHEMA_RE, { error: PG_SCHEMA_EXPECTED }).optional(),
          poolMax: int(1, 1000).optional(),
          statementTimeoutMs: int(100, MAX_TIMER_MS).optional(),
          queryTimeoutMs: int(100, MAX_TIMER_MS).optional(),
          connectTimeoutMs: int(100, MAX_TIMER_MS).optional(),
          keepAliveIdleMs: int(1000, MAX_TIMER_MS).optional(),
        },
        'an object { schema, poolMax, statementTimeoutMs, queryTimeoutMs, connectTimeoutMs, keepAliveIdleMs }',
      ).optional(),
      cluster: strict(
        { heartbeatMs: int(100, 60_000).optional(), deadNodeMs: int(200, MAX_TIMER_MS).optional() },
        'an object { heartbeatMs, deadNodeMs }',
      ).optional(),
      log: strict({ level: oneOf(LOG_LEVELS).optional() }, 'an object { level }').optional(),
      metrics: strict(
        {
          host: text('expected a non-empty string').optional(),
          port: int(0, 65535).optional(),
          onApiPort: z.boolean({ error: 'expected true or false' }).optional(),
        },
        'an object { host, port, onApiPort }',
      ).optional(),
      auth: strict(
        { maxFailures: int(1).optional(), failureWindowMs: int(1000, MAX_TIMER_MS).optional() },
        'an object { maxFailures, failureWindowMs }',
      ).optional(),
      sqlite: strict({ synchronous: oneOf(['FULL', 'NORMAL']).optional() }, 'an object { synchronous }').optional(),
      rateLimit: strict(
        {
          enabled: z.boolean({ error: 'expected true or false' }).optional(),
          windowMs: int(1, MAX_TIMER_MS).optional(),
          max: int(1).optional(),
          routes: z
            .record(z.string(), int(1), {
              error: 'expected an object mapping "METHOD /path" to a request count',
            })
            .optional(),
        },
        'an object { enabled, windowMs, max, routes }',
      ).optional(),
      stream: strict(
        {
          heartbeatMs: int(100, MAX_TIMER_MS).optional(),
          bufferSize: int(1, 1_000_000).optional(),
          retentionMs: int(1000, MAX_TIMER_MS).optional(),
        },
        'an object { heartbeatMs, bufferSize, retentionMs }',
      ).optional(),
      backup: strict(
        {
          every: z
            .custom<string | number>((v) => {
              if (typeof v !== 'string' && (typeof v !== 'number' || !Number.isInteger(v))) return false;
              const ms = parseDuration(v);
              return ms === null || (ms >= 60_000 && ms <= MAX_TIMER_MS);
            }, { error: DURATION_EXPECTED })
            .optional(),
          dir: text('expected a non-empty directory path').optional(),
          keepDaily: int(0).optional(),
          keepWeekly: int(0).optional(),
          keepMonthly: int(0).optional(),
          verify: z.boolean({ error: 'expected true or false' }).optional(),
          remote: strict(
            {
              url: z.string({ error: 'expected s3://bucket or s3://bucket/prefix' }).regex(/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/, { error: 'expected s3://bucket or s3://bucket/prefix' }),
              endpoint: z.url({ error: 'expected the URL of an S3-compatible endpoint, e.g. https://minio.internal:9000' }).optional(),
              region: text('expected a region name such as eu-west-1').optional(),
              forcePathStyle: z.boolean({ error: 'expected true or false' }).optional(),
              accessKeyIdFile: text('expected the path of a file holding the access key id').optional(),
              secretAccessKeyFile: text('expected the path of a file holding the secret access key').optional(),
            },
            'an object { url, endpoint, region, forcePathStyle, accessKeyIdFile, secretAccessKeyFile }',
          ).optional(),
        },
        'an object { every, dir, keepDaily, keepWeekly, keepMonthly, verify, remote }',
      ).optional(),
      rollout: strict(
        {
          channel: z.string({ error: 'expected a channel name such as "canary"' }).regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, { error: 'expected a channel name: lower-case letters, digits, ".", "_", "-"' }).optional(),
          channels: z
            .array(z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, { error: 'expected channel names: lower-case letters, digits, ".", "_", "-"' }), { error: 'expected the list of promotion stages, e.g. ["staging", "canary", "production"]' })
            .min(1)
            .optional(),
          featureGates: z
            .record(z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, { error: 'expected gate names: lower-case letters, digits, ".", "_", "-", up to 63 characters' }), z.boolean({ error: 'expected true or false' }))
            .optional(),
        },
        'an object { channel, channels, featureGates }',
      ).optional(),
      audit: strict(
        {
          exportDir: text('expected a non-empty directory path').optional(),
          keepFiles: int(1).optional(),
          exportIntervalMs: int(1000, MAX_TIMER_MS).optional(),
        },
        'an object { exportDir, keepFiles, exportIntervalMs }',
      ).optional(),
      durable: strict(
        {
          maxStepResultBytes: int(1, 256 * 1024 * 1024).optional(),
          maxStepsPerJob: int(1, 1_000_000).optional(),
          maxStateBytesPerJob: int(1).optional(),
        },
        'an object { maxStepResultBytes, maxStepsPerJob, maxStateBytesPerJob }',
      ).optional(),
      threads: strict(
        { restartInitialMs: int(1, MAX_TIMER_MS).optional(), restartMaxMs: int(1, MAX_TIMER_MS).optional() },
        'an object { restartInitialMs, restartMaxMs }',
      ).optional(),
      webhooks: strict(
        {
          allowPrivateNetworks: z.boolean({ error: 'expected true or false' }).optional(),
          timeoutMs: int(1, MAX_TIMER_MS).optional(),
          maxAttempts: int(1).optional(),
          breaker: breakerSchema(),
        },
        'an object { allowPrivateNetworks, timeoutMs, maxAttempts, breaker }',
      ).optional(),
      actions: strict(
        { telegramApiUrl: z.string({ error: BASE_URL_EXPECTED }).refine(isBaseUrl, { error: BASE_URL_EXPECTED }).optional() },
        'an object { telegramApiUrl }',
      ).optional(),
      search: strict(
        {
          payloadIndexes: z
            .array(z.string({ error: PAYLOAD_FIELD_EXPECTED }).regex(PAYLOAD_FIELD_RE, { error: PAYLOAD_FIELD_EXPECTED }), { error: 'expected a list of payload fields such as ["orderId", "customer.id"]' })
            .max(20, { error: 'expected at most 20 payload fields (each index costs every enqueue a write)' })
            .optional(),
        },
        'an object { payloadIndexes }',
      ).optional(),
      console: strict(
        {
          enabled: z.boolean({ error: 'expected true or false' }).optional(),
          sessionTtlMs: int(60_000, MAX_TIMER_MS).optional(),
        },
        'an object { enabled, sessionTtlMs }',
      ).optional(),
      // Lease caps (docs/configuration.md "Flow control"); per-queue tenant caps are `queues.<name>.tenantMaxActiveLeases`.
      flow: strict(
        {
          tenants: strict(
            {
              maxActiveLeases: int(1, MAX_LEASE_CAP).optional(),
              // 0 is allowed: a tenant whose jobs must wait (nothing of theirs is leased until it is raised).
              overrides: z
                .record(z.string().min(1, { error: TENANT_EXPECTED }).max(200, { error: TENANT_EXPECTED }), int(0, MAX_LEASE_CAP), {
                  error: 'expected an object mapping tenant names to their cap, e.g. { "acme": 50 }',
                })
                .optional(),
            },
            'an object { maxActiveLeases, overrides }',
          ).optional(),
          workers: strict(
            {
              maxActiveLeases: int(1, MAX_LEASE_CAP).optional(),
              keyMaxActiveLeases: int(1, MAX_LEASE_CAP).optional(),
              // Per work key, by its id (`key_…`) or its name, as `drover keys list` shows them.
              keys: z
                .record(
                  z.string().min(1, { error: KEY_REF_EXPECTED }).max(200, { error: KEY_REF_EXPECTED }),
                  strict({ maxActiveLeases: int(1, MAX_LEASE_CAP).optional(), maxWorkerLeases: int(1, MAX_LEASE_CAP).optional() }, 'an object { maxActiveLeases, maxWorkerLeases }'),
                  { error: 'expected an object mapping key ids or names to { maxActiveLeases, maxWorkerLeases }' },
                )
                .optional(),
            },
            'an object { maxActiveLeases, keyMaxActiveLeases, keys }',
          ).optional(),
        },
        'an object { tenants, workers }',
      ).optional(),
    },
    'an object (the default export of the config file)',
  );
}

type ConfigSchema = ReturnType<typeof buildConfigSchema>;
export type ParsedConfig = Zod.infer<ConfigSchema>;

let built: ConfigSchema | null = null;

/**
 * The config file's shape. Strict at every level: an unknown key is a typo
 * until proven otherwise. Semantic checks are in `config-checks.ts`. Built at
 * the first call, kept until `releaseConfigSchema`.
 *
 * @example
 * configSchema().safeParse({ handlers: [] }).success; // true
 */
export function configSchema(): ConfigSchema {
  return (built ??= buildConfigSchema());
}

/**
 * Drop the schema and zod itself (zod.ts): `drover start` calls it once the
 * node's config is resolved, which nothing does again; a later
 * `configSchema()` loads zod anew.
 */
export function releaseConfigSchema(): void {
  built = null;
  releaseZod();
}


/**
 * One zod issue → config issues with a readable path and `got …` appended.
 * An unknown-keys issue becomes one issue per key, pointing at the key.
 *
 * @example
 * fromZod(issue, raw); // [{ path: 'handlers[1].concurrency', message: 'expected an integer ≥ 1, got 0' }]
 */
export function fromZod(issue: Zod.core.$ZodIssue, raw: unknown): ConfigIssue[] {
  const path = issue.path as PropertyKey[];
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({ path: formatPath([...path, key]), message: `unknown key; ${issue.message}` }));
  }
  return [{ path: formatPath(path), message: `${issue.message}, ${got(valueAt(raw, path))}` }];
}

function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let current = raw;
  for (const key of path) {
    if (typeof current !== 'object' || current === null || !Object.hasOwn(current, key)) return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}

/** `['handlers', 1, 'retry', 'maxAttempts']` → `handlers[1].retry.maxAttempts`. */
function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return 'config';
  return path
    .map((key, i) => (typeof key === 'number' ? `[${key}]` : i === 0 ? String(key) : formatKey(String(key))))
    .join('');
}

/**
 * A key as it appears in a path: `.name`, or `["bad name"]` when it is not an identifier.
 *
 * @example
 * formatKey('billing'); // '.billing'
 * formatKey('my queue'); // '["my queue"]'
 */
export function formatKey(key: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

/**
 * The tail of a message: what was found instead, clipped to a readable size.
 *
 * @example
 * got(0); // 'got 0'
 * got(undefined); // 'but it is missing'
 */
export function got(value: unknown): string {
  if (value === undefined) return 'but it is missing';
  if (typeof value === 'function') return 'got a function';
  if (typeof value === 'bigint') return `got ${value}n`;
  if (typeof value === 'symbol') return 'got a symbol';
  if (typeof value === 'number' && !Number.isFinite(value)) return `got ${value}`;
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch {
    json = undefined;
  }
  if (json === undefined) return `got ${String(value)}`;
  return `got ${json.length > 60 ? `${json.slice(0, 57)}...` : json}`;
}
