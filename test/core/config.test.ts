import { afterEach, describe, expect, it } from 'vitest';
import {
  concurrencyKeyFor,
  DEFAULTS,
  resolveConfig,
  routeEvent,
  type ConfigIssue,
  type ResolvedHandler,
} from '../../src/core/config.js';
import { queuePolicy } from '../../src/core/queue-policy.js';
import type { z } from 'zod';
import { configSchema } from '../../src/core/config-schema.js';
import { DroverError } from '../../src/core/errors.js';
import type { DroverConfig } from '../../src/core/handler.js';

const run = async () => undefined;
const minimal = (handlers: unknown[] = [{ name: 'h', run }]) => ({ handlers });

/** The problems a config is rejected with, as `path: message` lines. */
function problems(raw: unknown, env: Record<string, string | undefined> = {}, overrides = {}): string[] {
  try {
    resolveConfig(raw, env, overrides);
  } catch (error) {
    expect(error).toBeInstanceOf(DroverError);
    const e = error as DroverError;
    expect(e.code).toBe('config_invalid');
    const issues = e.extensions.errors as ConfigIssue[];
    const lines = issues.map((i) => `${i.path}: ${i.message}`);
    // The message lists every problem, one per line.
    expect(e.message.split('\n').slice(1).map((l) => l.trim())).toEqual(lines);
    expect(e.message.split('\n')[0]).toBe(`invalid configuration (${lines.length} problem${lines.length === 1 ? '' : 's'}):`);
    return lines;
  }
  throw new Error('expected resolveConfig to throw');
}

describe('resolveConfig: defaults', () => {
  it('fills every default from DEFAULTS', () => {
    const c = resolveConfig(minimal(), {});
    expect(c.server).toEqual({
      host: '127.0.0.1',
      port: 7070,
      requestTimeoutMs: 30_000,
      headersTimeoutMs: 10_000,
      keepAliveTimeoutMs: 72_000,
      connectionTimeoutMs: 0,
      maxConnections: 10_000,
      trustProxy: [],
      tls: null,
    });
    expect(c.auth).toEqual({ maxFailures: 20, failureWindowMs: 60_000 });
    expect(c.metrics).toEqual({ host: '127.0.0.1', port: null, onApiPort: true });
    expect(c.databaseUrl).toBe('./data/drover.db');
    expect(c.limits).toEqual({ maxPayloadBytes: 1_048_576, timeoutMs: 300_000, memoryMb: 256, maxJsonDepth: 64, maxJsonMembers: 100_000 });
    expect(c.shutdown).toEqual({ graceMs: 25_000 });
    expect(c.retention).toEqual({
      succeededMs: 7 * 86_400_000,
      deadMs: 30 * 86_400_000,
      eventsMs: 7 * 86_400_000,
      intervalMs: 600_000,
      batchSize: 1000,
    });
    expect(c.poisonAfter).toBe(3);
    expect(c.log).toEqual({ level: 'info' });
    expect(c.sqlite).toEqual({ synchronous: 'FULL' });
    expect([...c.queues]).toEqual([['default', queuePolicy({ maxDepth: 100_000 })]]);
  });

  it('resolves a handler with every default', () => {
    const h = resolveConfig(minimal(), {}).handlers.get('h');
    expect(h).toEqual({
      name: 'h',
      queue: 'default',
      concurrency: 10,
      concurrencyKey: null,
      concurrencyLimit: 1,
      priority: 0,
      maxAttempts: 5,
      backoff: { initialMs: 1000, maxMs: 3_600_000, factor: 2, jitter: 'full' },
      timeoutMs: 300_000,
      triggers: [],
      cron: [],
      cronTimezone: 'UTC',
      remote: false,
      run,
      isolation: 'inline',
      memoryMb: 256,
      quarantine: { failures: 5, windowMs: 300_000 },
      breaker: { failures: 3, ratio: 0.5, minRequests: 10, window: 20, coolDownMs: 60_000 },
      rateLimit: null,
    });
  });

  it('accepts an empty handler list', () => {
    expect(resolveConfig({ handlers: [] }, {}).handlers.size).toBe(0);
  });
});

describe('resolveConfig: handlers', () => {
  it('uses every value the user gives', () => {
    const c = resolveConfig(
      minimal([
        {
          name: 'billing.charge:v2',
          run,
          on: 'order.created',
          queue: 'billing',
          concurrency: 3,
          concurrencyKey: 'payload.customer.id',
          concurrencyLimit: 2,
          priority: -5,
          retry: { maxAttempts: 8, backoff: { initialMs: 10, maxMs: 500, factor: 1.5, jitter: 'equal' } },
          timeoutMs: 1234,
          cron: ['0 9 * * *', '*/15 * * * * *'],
          cronTimezone: 'Europe/Berlin',
        },
      ]),
      {},
    );
    const h = c.handlers.get('billing.charge:v2');
    expect(h).toMatchObject({
      queue: 'billing',
      concurrency: 3,
      concurrencyKey: 'payload.customer.id',
      concurrencyLimit: 2,
      priority: -5,
      maxAttempts: 8,
      backoff: { initialMs: 10, maxMs: 500, factor: 1.5, jitter: 'equal' },
      timeoutMs: 1234,
      cron: ['0 9 * * *', '*/15 * * * * *'],
      cronTimezone: 'Europe/Berlin',
    });
  });

  it('merges a partial backoff over the defaults', () => {
    const h = resolveConfig(minimal([{ name: 'h', run, retry: { backoff: { jitter: 'none' } } }]), {}).handlers.get('h');
    expect(h?.backoff).toEqual({ initialMs: 1000, maxMs: 3_600_000, factor: 2, jitter: 'none' });
    expect(h?.maxAttempts).toBe(5);
  });

  it('takes a handler timeout from limits.timeoutMs when it has none', () => {
    const c = resolveConfig({ handlers: [{ name: 'a', run }, { name: 'b', run, timeoutMs: 5 }], limits: { timeoutMs: 60_000 } }, {});
    expect(c.handlers.get('a')?.timeoutMs).toBe(60_000);
    expect(c.handlers.get('b')?.timeoutMs).toBe(5);
  });

  it('turns a single cron string into a list', () => {
    expect(resolveConfig(minimal([{ name: 'h', run, cron: '@hourly' }]), {}).handlers.get('h')?.cron).toEqual(['@hourly']);
  });

  it('keeps handlers in declaration order', () => {
    const c = resolveConfig(minimal([{ name: 'b', run }, { name: 'a', run }, { name: 'c', run }]), {});
    expect([...c.handlers.keys()]).toEqual(['b', 'a', 'c']);
  });

  it('does not mutate the input', () => {
    const raw = { handlers: [{ name: 'h', run, on: ['a'], retry: { backoff: {} } }], server: {} };
    const copy = structuredClone({ ...raw, handlers: [{ ...raw.handlers[0], run: undefined }] });
    resolveConfig(raw, {});
    expect({ ...raw, handlers: [{ ...raw.handlers[0], run: undefined }] }).toEqual(copy);
  });
});

describe('resolveConfig: triggers', () => {
  it('accepts a string, an { event, filter } object, or an array of either', () => {
    const c = resolveConfig(
      minimal([
        { name: 's', run, on: 'order.created' },
        { name: 'o', run, on: { event: 'order.*', filter: { amount: { $gt: 100 } } } },
        { name: 'a', run, on: ['user.created', { event: 'user.**' }, { event: 'x', filter: {} }] },
        { name: 'e', run, on: [] },
      ]),
      {},
    );
    const s = c.handlers.get('s')!;
    expect(s.triggers).toHaveLength(1);
    expect(s.triggers[0]).toMatchObject({ pattern: 'order.created', filter: null });
    expect(s.triggers[0]!.matches('order.created')).toBe(true);

    const o = c.handlers.get('o')!.triggers[0]!;
    expect(o.pattern).toBe('order.*');
    expect(o.matches('order.paid')).toBe(true);
    expect(o.filter?.({ amount: 101 })).toBe(true);
    expect(o.filter?.({ amount: 99 })).toBe(false);

    expect(c.handlers.get('a')!.triggers.map((t) => t.pattern)).toEqual(['user.created', 'user.**', 'x']);
    expect(c.handlers.get('a')!.triggers[1]!.filter).toBeNull();
    expect(c.handlers.get('e')!.triggers).toEqual([]);
  });
});

describe('resolveConfig: queues', () => {
  it('includes declared queues, queues handlers use, and default', () => {
    const c = resolveConfig(
      { handlers: [{ name: 'a', run, queue: 'emails' }, { name: 'b', run, queue: 'billing' }], queues: { billing: { maxDepth: 50 }, idle: {} } },
      {},
    );
    expect(Object.fromEntries(c.queues)).toEqual({
      default: queuePolicy({ maxDepth: 100_000 }),
      billing: queuePolicy({ maxDepth: 50 }),
      idle: queuePolicy({ maxDepth: 100_000 }),
      emails: queuePolicy({ maxDepth: 100_000 }),
    });
  });

  it('lets the default queue be configured', () => {
    const c = resolveConfig({ handlers: [], queues: { default: { maxDepth: 7 } } }, {});
    expect(c.queues.get('default')).toEqual(queuePolicy({ maxDepth: 7 }));
  });
});

describe('resolveConfig: precedence (flags > env > file > defaults)', () => {
  const file = {
    handlers: [],
    server: { host: 'file-host', port: 1111 },
    databaseUrl: 'file.db',
    log: { level: 'warn' },
    shutdown: { graceMs: 1000 },
  };
  const env = {
    DROVER_HOST: 'env-host',
    DROVER_PORT: '2222',
    DROVER_DATABASE_URL: 'postgres://env/db',
    DROVER_LOG_LEVEL: 'debug',
    DROVER_SHUTDOWN_GRACE_MS: '2000',
  };
  const flags = { host: 'flag-host', port: 3333, databaseUrl: 'flag.db', logLevel: 'error', graceMs: 3000 };
  const pick = (c: ReturnType<typeof resolveConfig>) => [c.server.host, c.server.port, c.databaseUrl, c.log.level, c.shutdown.graceMs];

  it('defaults when nothing is set', () => {
    expect(pick(resolveConfig({ handlers: [] }, {}))).toEqual(['127.0.0.1', 7070, './data/drover.db', 'info', 25_000]);
  });
  it('config file over defaults', () => {
    expect(pick(resolveConfig(file, {}))).toEqual(['file-host', 1111, 'file.db', 'warn', 1000]);
  });
  it('env over config file', () => {
    expect(pick(resolveConfig(file, env))).toEqual(['env-host', 2222, 'postgres://env/db', 'debug', 2000]);
  });
  it('flags over env', () => {
    expect(pick(resolveConfig(file, env, flags))).toEqual(['flag-host', 3333, 'flag.db', 'error', 3000]);
  });
  it('each layer can set one value alone', () => {
    const c = resolveConfig({ handlers: [], server: { host: 'file-host' } }, { DROVER_PORT: '9' }, { logLevel: 'trace' });
    expect(pick(c)).toEqual(['file-host', 9, './data/drover.db', 'trace', 25_000]);
  });
  it('treats empty env variables as unset and ignores unrelated ones', () => {
    const c = resolveConfig(file, { DROVER_HOST: '', DROVER_PORT: '', DROVER_LOG_LEVEL: '', PORT: '1', DROVER_UNKNOWN: 'x' });
    expect(pick(c)).toEqual(['file-host', 1111, 'file.db', 'warn', 1000]);
  });
  it('accepts port 0 (pick a free port) and surrounding whitespace in numeric env values', () => {
    expect(resolveConfig({ handlers: [] }, { DROVER_PORT: ' 0 ' }).server.port).toBe(0);
  });

  describe('never reads process.env itself', () => {
    afterEach(() => {
      delete process.env.DROVER_PORT;
    });
    it('uses only the env it is given', () => {
      process.env.DROVER_PORT = '4444';
      expect(resolveConfig({ handlers: [] }, {}).server.port).toBe(7070);
    });
  });
});

describe('resolveConfig: errors', () => {
  it('throws config_invalid (status 500) with structured errors', () => {
    try {
      resolveConfig(minimal([{ name: 'h', run, concurrency: 0 }]), {});
      throw new Error('expected throw');
    } catch (error) {
      const e = error as DroverError;
      expect(e.code).toBe('config_invalid');
      expect(e.status).toBe(500);
      expect(e.extensions.errors).toEqual([{ path: 'handlers[0].concurrency', message: 'expected an integer ≥ 1, got 0' }]);
    }
  });

  it('lists every problem at once', () => {
    const lines = problems(
      {
        handlers: [
          { name: 'ok', run, concurrency: 0, retries: 3 },
          { name: 'ok', run: 'nope' },
          7,
        ],
        server: { port: 70_000, hots: 'x' },
        bogus: true,
      },
      { DROVER_PORT: 'http' },
      { port: -1 },
    );
    expect(lines).toEqual([
      'handlers[0].concurrency: expected an integer ≥ 1, got 0',
      'handlers[0].retries: unknown key; allowed keys: name, on, queue, concurrency, concurrencyKey, concurrencyLimit, priority, retry, timeoutMs, cron, cronTimezone, run, remote, isolation, limits, quarantine, breaker, rateLimit',
      'handlers[1].run: expected a function run(ctx), got "nope"',
      'handlers[1].name: duplicate handler name "ok" (also handlers[0].name)',
      'handlers[2]: expected a handler object { name, run, ... }, got 7',
      'server.port: expected an integer from 0 to 65535, got 70000',
      'server.hots: unknown key; allowed keys: host, port, requestTimeoutMs, headersTimeoutMs, keepAliveTimeoutMs, connectionTimeoutMs, maxConnections, trustProxy, tls',
      'bogus: unknown key; allowed keys: handlers, queues, server, databaseUrl, limits, shutdown, retention, poisonAfter, postgres, cluster, log, metrics, auth, sqlite, rateLimit, stream, backup, rollout, audit, durable, threads, webhooks, actions, search, console, flow',
      'DROVER_PORT: expected an integer from 0 to 65535, got "http"',
      '--port: expected an integer from 0 to 65535, got -1',
    ]);
  });

  it('rejects a config that is not an object, or lacks handlers', () => {
    expect(problems(undefined)).toEqual(['config: expected an object (the default export of the config file), but it is missing']);
    expect(problems(42)).toEqual(['config: expected an object (the default export of the config file), got 42']);
    expect(problems({})).toEqual(['handlers: expected an array of handlers, but it is missing']);
    expect(problems({ handlers: {} })).toEqual(['handlers: expected an array of handlers, got {}']);
  });

  it('validates handler names and queue names', () => {
    expect(problems(minimal([{ run }]))).toEqual([
      'handlers[0].name: expected 1-100 characters from letters, digits, "_", ".", ":", "-", but it is missing',
    ]);
    expect(problems(minimal([{ name: 'has space', run }]))[0]).toMatch(/^handlers\[0\]\.name: expected 1-100 characters.*got "has space"$/);
    expect(problems(minimal([{ name: 'x'.repeat(101), run }]))[0]).toMatch(/^handlers\[0\]\.name: expected 1-100/);
    expect(problems(minimal([{ name: '', run }]))[0]).toMatch(/^handlers\[0\]\.name: expected 1-100/);
    expect(problems(minimal([{ name: 'h', run, queue: 'a/b' }]))[0]).toMatch(/^handlers\[0\]\.queue: expected 1-100/);
    expect(problems({ handlers: [], queues: { 'bad name': {} } })).toEqual([
      'queues["bad name"]: invalid queue name; expected 1-100 characters from letters, digits, "_", ".", ":", "-"',
    ]);
  });

  it('requires run to be a function', () => {
    expect(problems(minimal([{ name: 'h' }]))).toEqual([
      'handlers[0].run: expected a function run(ctx), but it is missing (or set remote: true if remote workers run this handler)',
    ]);
    expect(problems(minimal([{ name: 'h', run: {} }]))).toEqual(['handlers[0].run: expected a function run(ctx), got {}']);
  });

  it('declares a remote handler with remote: true and no run', () => {
    const config = resolveConfig(minimal([{ name: 'py', remote: true, on: 'a.b' }]), {});
    expect(config.handlers.get('py')?.remote).toBe(true);
    expect(() => config.handlers.get('py')?.run({} as never)).toThrow(/remote workers/);
    expect(problems(minimal([{ name: 'h', remote: true, run }]))).toEqual([
      'handlers[0].run: a remote handler (remote: true) has no run; remote workers run its jobs',
    ]);
    expect(problems(minimal([{ name: 'h', remote: 'yes' }]))[0]).toBe('handlers[0].remote: expected true or false, got "yes"');
  });

  it('validates rateLimit and stream', () => {
    const config = resolveConfig({ handlers: [], rateLimit: { max: 10, routes: { 'POST /v1/events': 3 } }, stream: { heartbeatMs: 500 } }, {});
    expect(config.rateLimit).toEqual({ enabled: true, windowMs: 1000, max: 10, routes: { 'POST /v1/events': 3 } });
    expect(config.stream).toEqual({ heartbeatMs: 500, bufferSize: 10_000, retentionMs: 300_000 });
    expect(problems({ handlers: [], rateLimit: { routes: { 'events please': 3 } } })[0]).toMatch(/^rateLimit\.routes\["events please"\]: invalid route; expected a route such as "POST \/v1\/events"/);
    expect(problems({ handlers: [], rateLimit: { windowMs: 0 } })).toEqual(['rateLimit.windowMs: expected an integer from 1 to 2147483647, got 0']);
  });

  it('checks numeric bounds and types', () => {
    const h = (extra: object) => minimal([{ name: 'h', run, ...extra }]);
    expect(problems(h({ concurrency: 1.5 }))).toEqual(['handlers[0].concurrency: expected an integer ≥ 1, got 1.5']);
    expect(problems(h({ concurrency: '10' }))).toEqual(['handlers[0].concurrency: expected an integer ≥ 1, got "10"']);
    expect(problems(h({ concurrencyLimit: 0 }))).toEqual(['handlers[0].concurrencyLimit: expected an integer ≥ 1, got 0']);
    expect(problems(h({ priority: 1_000_001 }))[0]).toMatch(/^handlers\[0\]\.priority: expected an integer from -1000000 to 1000000, got 1000001$/);
    expect(problems(h({ timeoutMs: 2 ** 31 }))[0]).toMatch(/^handlers\[0\]\.timeoutMs: expected an integer from 1 to 2147483647/);
    expect(problems(h({ timeoutMs: Infinity }))).toEqual(['handlers[0].timeoutMs: expected an integer from 1 to 2147483647, got Infinity']);
    expect(problems(h({ retry: { maxAttempts: 0 } }))).toEqual(['handlers[0].retry.maxAttempts: expected an integer ≥ 1, got 0']);
    expect(problems(h({ retry: { backoff: { factor: 0.5 } } }))).toEqual(['handlers[0].retry.backoff.factor: expected a number ≥ 1, got 0.5']);
    expect(problems(h({ retry: { backoff: { initialMs: -1 } } }))).toEqual(['handlers[0].retry.backoff.initialMs: expected an integer ≥ 0, got -1']);
    expect(problems(h({ retry: { backoff: { jitter: 'half' } } }))).toEqual([
      'handlers[0].retry.backoff.jitter: expected one of "full", "equal", "none", got "half"',
    ]);
    expect(problems(h({ retry: { backoff: { initial: 5 } } }))).toEqual([
      'handlers[0].retry.backoff.initial: unknown key; allowed keys: initialMs, maxMs, factor, jitter',
    ]);
    expect(problems(h({ retry: 3 }))).toEqual(['handlers[0].retry: expected an object { maxAttempts, backoff }, got 3']);
    expect(problems({ handlers: [], queues: { q: { maxDepth: 0 } } })).toEqual(['queues.q.maxDepth: expected an integer ≥ 1, got 0']);
    expect(problems({ handlers: [], limits: { maxPayloadBytes: 0 } })).toEqual(['limits.maxPayloadBytes: expected an integer ≥ 1, got 0']);
    expect(problems({ handlers: [], retention: { intervalMs: 10 } })).toEqual([
      'retention.intervalMs: expected an integer from 1000 to 2147483647, got 10',
    ]);
    expect(problems({ handlers: [], poisonAfter: 0 })).toEqual(['poisonAfter: expected an integer ≥ 1, got 0']);
    expect(problems({ handlers: [], shutdown: { graceMs: -1 } })).toEqual(['shutdown.graceMs: expected an integer from 0 to 2147483647, got -1']);
    expect(problems({ handlers: [], log: { level: 'verbose' } })).toEqual([
      'log.level: expected one of "trace", "debug", "info", "warn", "error", "fatal", "silent", got "verbose"',
    ]);
    expect(problems({ handlers: [], sqlite: { synchronous: 'OFF' } })).toEqual(['sqlite.synchronous: expected one of "FULL", "NORMAL", got "OFF"']);
    expect(problems({ handlers: [], databaseUrl: '' })).toEqual([
      'databaseUrl: expected a non-empty string (postgres:// URL or SQLite file path), got ""',
    ]);
    expect(problems({ handlers: [], server: { host: '' } })).toEqual(['server.host: expected a non-empty string, got ""']);
  });

  it('validates concurrencyKey', () => {
    const h = (concurrencyKey: unknown) => minimal([{ name: 'h', run, concurrencyKey }]);
    for (const ok of ['tenant', 'payload.customerId', 'payload.a.b.c', 'payload.0']) expect(() => resolveConfig(h(ok), {})).not.toThrow();
    for (const bad of ['payload', 'payload.', 'payload..a', 'customer', 'tenant.id', '']) {
      expect(problems(h(bad))[0]).toMatch(/^handlers\[0\]\.concurrencyKey: expected "tenant" or "payload.<path>"/);
    }
    expect(problems(h(5))).toEqual(['handlers[0].concurrencyKey: expected "tenant" or "payload.<path>", got 5']);
  });

  it('reports bad patterns and filters with their paths, reusing the trigger and filter validators', () => {
    const lines = problems(
      minimal([
        {
          name: 'h',
          run,
          on: ['ok.*', 'a..b', { event: 'x', filter: { amount: { $regex: 'y' } } }, { event: 'y', when: {} }, { filter: {} }, 5],
        },
        { name: 'g', run, on: { event: 'order*' } },
        { name: 'f', run, on: { event: 'z', filter: [] } },
      ]),
    );
    expect(lines).toEqual([
      'handlers[0].on[1]: event pattern "a..b": segment 2 is empty; allowed: letters, digits, "_", "-", ":" in segments separated by "."',
      'handlers[0].on[2].filter.amount: unknown operator "$regex"; allowed: $eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, $exists',
      'handlers[0].on[3].when: unknown key; allowed keys: event, filter, debounce, throttle, batch',
      'handlers[0].on[4].event: expected an event name or pattern, but it is missing',
      'handlers[0].on[5]: expected an event pattern string or { event, filter }, got 5',
      'handlers[1].on.event: event pattern "order*": segment "order*": "*" and "**" must be a whole segment (e.g. "order.*", not "order*")',
      'handlers[2].on.filter: expected an object of conditions, got []',
    ]);
  });

  it('reports bad cron expressions and time zones', () => {
    expect(problems(minimal([{ name: 'h', run, cron: ['0 9 * * *', '61 * * * *', 7] }]))).toEqual([
      'handlers[0].cron[1]: cron expression "61 * * * *": Constraint error, got value 61 expected range 0-59',
      'handlers[0].cron[2]: expected a cron expression string (or an array of them), got 7',
    ]);
    expect(problems(minimal([{ name: 'h', run, cron: '' }]))).toEqual(['handlers[0].cron: cron expression "": must not be empty']);
    expect(problems(minimal([{ name: 'h', run, cron: '0 9 * * *', cronTimezone: 'Mars/Olympus' }]))).toEqual([
      'handlers[0].cronTimezone: expected an IANA time zone such as "UTC" or "Europe/Berlin", got "Mars/Olympus"',
    ]);
  });

  it('validates env values, naming the variable', () => {
    expect(problems({ handlers: [] }, { DROVER_PORT: '80a' })).toEqual(['DROVER_PORT: expected an integer from 0 to 65535, got "80a"']);
    expect(problems({ handlers: [] }, { DROVER_PORT: '65536' })).toEqual(['DROVER_PORT: expected an integer from 0 to 65535, got "65536"']);
    expect(problems({ handlers: [] }, { DROVER_PORT: '-1' })).toEqual(['DROVER_PORT: expected an integer from 0 to 65535, got "-1"']);
    expect(problems({ handlers: [] }, { DROVER_SHUTDOWN_GRACE_MS: '1.5' })).toEqual([
      'DROVER_SHUTDOWN_GRACE_MS: expected an integer from 0 to 2147483647, got "1.5"',
    ]);
    expect(problems({ handlers: [] }, { DROVER_LOG_LEVEL: 'INFO' })).toEqual([
      'DROVER_LOG_LEVEL: expected one of "trace", "debug", "info", "warn", "error", "fatal", "silent", got "INFO"',
    ]);
  });

  it('validates overrides', () => {
    expect(problems({ handlers: [] }, {}, { port: Number.NaN })).toEqual(['--port: expected an integer from 0 to 65535, got NaN']);
    expect(problems({ handlers: [] }, {}, { host: '' })).toEqual(['--host: expected a non-empty string, got ""']);
    expect(problems({ handlers: [] }, {}, { logLevel: 'loud' })[0]).toMatch(/^overrides\.logLevel: expected one of/);
    expect(problems({ handlers: [] }, {}, { graceMs: -5 })[0]).toMatch(/^overrides\.graceMs: expected an integer from 0/);
    expect(problems({ handlers: [] }, {}, { databaseUrl: '' })[0]).toMatch(/^overrides\.databaseUrl: expected a non-empty string/);
  });
});

describe('concurrencyKeyFor', () => {
  const handler = (concurrencyKey: string | null) => ({ concurrencyKey }) as ResolvedHandler;

  it('is null for a handler without a key', () => {
    expect(concurrencyKeyFor(handler(null), { a: 1 }, 'acme')).toBeNull();
  });

  it('uses the tenant, or null without one', () => {
    expect(concurrencyKeyFor(handler('tenant'), {}, 'acme')).toBe('acme');
    expect(concurrencyKeyFor(handler('tenant'), {}, null)).toBeNull();
    expect(concurrencyKeyFor(handler('tenant'), {}, '')).toBeNull();
  });

  it('reads a payload path and stringifies scalars and objects', () => {
    const k = handler('payload.customer.id');
    expect(concurrencyKeyFor(k, { customer: { id: 'c-1' } }, 'acme')).toBe('c-1');
    expect(concurrencyKeyFor(k, { customer: { id: 42 } }, null)).toBe('42');
    expect(concurrencyKeyFor(k, { customer: { id: true } }, null)).toBe('true');
    expect(concurrencyKeyFor(k, { customer: { id: { a: [1] } } }, null)).toBe('{"a":[1]}');
    expect(concurrencyKeyFor(handler('payload.items.1'), { items: ['x', 'y'] }, null)).toBe('y');
  });

  it('is null when the payload value is missing, null or empty', () => {
    const k = handler('payload.customer.id');
    expect(concurrencyKeyFor(k, {}, null)).toBeNull();
    expect(concurrencyKeyFor(k, { customer: { id: null } }, null)).toBeNull();
    expect(concurrencyKeyFor(k, { customer: { id: '' } }, null)).toBeNull();
    expect(concurrencyKeyFor(k, null, null)).toBeNull();
    expect(concurrencyKeyFor(k, 'str', null)).toBeNull();
    expect(concurrencyKeyFor(handler('payload.constructor'), {}, null)).toBeNull();
  });
});

describe('routeEvent', () => {
  const config = resolveConfig(
    minimal([
      { name: 'all-orders', run, on: 'order.**' },
      { name: 'big-orders', run, on: { event: 'order.created', filter: { amount: { $gt: 100 } } } },
      { name: 'two-triggers', run, on: ['order.created', 'order.*'] },
      { name: 'users', run, on: 'user.created' },
      { name: 'cron-only', run, cron: '@daily' },
    ]),
    {},
  );
  const names = (name: string, data: unknown) => routeEvent(config.handlers.values(), { name, data }).map((h) => h.name);

  it('routes to handlers whose pattern matches and whose filter passes, once each, in order', () => {
    expect(names('order.created', { amount: 500 })).toEqual(['all-orders', 'big-orders', 'two-triggers']);
    expect(names('order.created', { amount: 5 })).toEqual(['all-orders', 'two-triggers']);
    expect(names('order.created.eu', { amount: 500 })).toEqual(['all-orders']);
    expect(names('user.created', null)).toEqual(['users']);
    expect(names('nothing.here', {})).toEqual([]);
  });

  it('accepts any iterable of handlers', () => {
    expect(routeEvent([], { name: 'order.created', data: {} })).toEqual([]);
    expect(routeEvent(config.handlers.values(), { name: 'order', data: {} }).map((h) => h.name)).toEqual(['all-orders']);
  });
});

describe('HTTP server hardening keys', () => {
  it('resolves timeouts, the connection cap, TLS files, auth limits and the metrics switch', () => {
    const c = resolveConfig(
      {
        handlers: [],
        server: { requestTimeoutMs: 5000, headersTimeoutMs: 2000, keepAliveTimeoutMs: 1000, connectionTimeoutMs: 0, maxConnections: 50, tls: { certFile: 'c.pem', keyFile: 'k.pem' } },
        auth: { maxFailures: 3 },
        metrics: { onApiPort: false },
        limits: { maxJsonDepth: 16 },
      },
      {},
    );
    expect(c.server).toMatchObject({ requestTimeoutMs: 5000, headersTimeoutMs: 2000, keepAliveTimeoutMs: 1000, connectionTimeoutMs: 0, maxConnections: 50, tls: { certFile: 'c.pem', keyFile: 'k.pem' } });
    expect(c.auth).toEqual({ maxFailures: 3, failureWindowMs: 60_000 });
    expect(c.metrics.onApiPort).toBe(false);
    expect(c.limits.maxJsonDepth).toBe(16);
  });

  it('refuses a header timeout above the request timeout, a depth above 512 and half a TLS pair', () => {
    const problems = (raw: unknown) => {
      try {
        resolveConfig(raw, {});
        return [];
      } catch (error) {
        return ((error as DroverError).extensions.errors as Array<{ path: string; message: string }>).map((i) => `${i.path}: ${i.message}`);
      }
    };
    expect(problems({ handlers: [], server: { headersTimeoutMs: 40_000 } })).toEqual(['server.headersTimeoutMs: expected at most server.requestTimeoutMs (30000), got 40000']);
    expect(problems({ handlers: [], limits: { maxJsonDepth: 10_000 } })).toEqual(['limits.maxJsonDepth: expected an integer from 2 to 512, got 10000']);
    expect(problems({ handlers: [], server: { connectionTimeoutMs: 30_000 } })).toEqual(['server.connectionTimeoutMs: expected 0 (off) or at least 65000 (above the longest lease waitMs), got 30000']);
    expect(problems({ handlers: [], server: { tls: { certFile: 'c.pem' } } })).toEqual(['server.tls.keyFile: expected a non-empty file path, but it is missing']);
  });
});

describe('DEFAULTS', () => {
  it('matches the documented spec values', () => {
    expect(DEFAULTS.server).toMatchObject({ host: '127.0.0.1', port: 7070 });
    expect(DEFAULTS.handler.retry).toEqual({ maxAttempts: 5, backoff: { initialMs: 1000, maxMs: 3_600_000, factor: 2, jitter: 'full' } });
    expect(DEFAULTS.retention.intervalMs).toBe(600_000);
  });
});

describe('the DroverConfig type', () => {
  it('declares every top-level key the config accepts (a key missing from the type is a compile error here)', () => {
    type Accepted = keyof z.infer<ReturnType<typeof configSchema>>;
    // Fails `npm run typecheck` when the schema accepts a key the TypeScript type does not declare.
    const undeclared: Record<Exclude<Accepted, keyof DroverConfig>, never> = {};
    expect(Object.keys(undeclared)).toEqual([]);
    expect(Object.keys(configSchema().shape)).toEqual(expect.arrayContaining(['postgres', 'cluster', 'metrics', 'auth']));
  });
});
