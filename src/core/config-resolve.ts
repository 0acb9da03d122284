/**
 * Resolution: the validated config (schema and checks passed) with env and
 * CLI settings applied and every default filled in, as the runtime reads it.
 */
import { DEFAULT_CHANNEL, DEFAULT_CHANNELS } from './rollout.js';
import type { QueuePolicy } from './queue-policy.js';
import { resolveQueue } from './config-queues.js';
import type { FlowCaps } from './lease-caps.js';
import type { HandlerDefinition } from './handler.js';
import { definedOnly, type Settings } from './config-sources.js';
import { DEFAULTS } from './config-defaults.js';
import { parseDuration, type ParsedConfig } from './config-schema.js';
import type { ResolvedConfig, ResolvedHandler, ResolvedTrigger } from './config.js';

/**
 * The resolved config of `cfg` (the schema's output), with `triggers` (each
 * handler's compiled triggers by index) and `over` (env and CLI settings, which win).
 *
 * @example
 * resolveValidated(parsed.data, triggers, { port: 8080 }).server.port; // 8080
 */
export function resolveValidated(cfg: ParsedConfig, triggers: Map<number, ResolvedTrigger[]>, over: Settings): ResolvedConfig {
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

/** Without a channel, a node is `production` (or, with the operator's own stages, the last of them). */
function resolveRollout(rollout: ParsedConfig['rollout']): ResolvedConfig['rollout'] {
  const channels = rollout?.channels ?? [...DEFAULT_CHANNELS];
  const channel = rollout?.channel ?? (channels.includes(DEFAULT_CHANNEL) ? DEFAULT_CHANNEL : channels[channels.length - 1]!);
  return { channel, channels, featureGates: { ...(rollout?.featureGates ?? {}) } };
}
