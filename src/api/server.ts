/**
 * `buildServer` returns a configured Fastify instance and never listens: the
 * CLI calls `listen`, tests call `inject()`. Route groups are plugins that
 * declare their own scope per route.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { DroverError } from '../core/errors.js';
import type { Runtime } from '../runtime/runtime.js';
import { KeyVerifier, registerAuth } from './auth.js';
import { registerProblemHandlers, sendProblem, toDroverError } from './problem.js';
import { registerRateLimit } from './rate-limit.js';
import { clientErrorHandler } from './client-errors.js';
import { registerJsonLimits } from './json-limits.js';
import { applyListenerLimits, listenerOptions } from './listener.js';
import { registerSecurityHeaders } from './security-headers.js';
import { lazyValidators, type LazyValidators } from './lazy-validators.js';
import { auditRoutes } from './routes/audit.js';
import { controlRoutes } from './routes/control.js';
import { triggerRoutes } from './routes/triggers.js';
import { mcpRoutes } from './routes/mcp.js';
import { healthRoutes } from './routes/health.js';
import { intakeRoutes } from './routes/intake.js';
import { interruptRoutes } from './routes/interrupts.js';
import { jobRoutes } from './routes/jobs.js';
import { keyRoutes } from './routes/keys.js';
import { registerOpenApi } from './routes/openapi.js';
import { statusRoutes } from './routes/status.js';
import { streamRoutes } from './routes/stream.js';
import { workerRoutes } from './routes/workers.js';
import { adminRoutes } from './routes/admin.js';
import { metricsRoutes } from './routes/metrics.js';
import { snapshotRoutes } from './routes/snapshots.js';
import { rolloutRoutes } from './routes/rollout.js';
import type { SnapshotService } from '../ops/backup/snapshots.js';
import { consoleRoutes } from './routes/console.js';
import { sessionRoutes } from './routes/console-session.js';
import { ConsoleSessions } from './session.js';
import { bulkJobRoutes } from './routes/jobs-bulk.js';
import { BulkJobs } from '../ops/bulk-jobs.js';
import type { Readiness } from '../obs/health.js';
import { registerHttpMetrics } from '../obs/http-metrics.js';
import { registerRequestTracing } from '../obs/http-tracing.js';
import type { DroverMetrics } from '../obs/metrics.js';
import type { AuditExportStatus } from '../ops/audit/export.js';
import type { StoreHealth } from '../obs/store-health.js';

export interface ServerDeps {
  runtime: Runtime;
  /** Metrics (HTTP hook, `GET /metrics` unless `serveMetrics` is false) and readiness checks; `startNode` supplies them. */
  obs?: { metrics?: DroverMetrics; readiness?: Readiness; serveMetrics?: boolean; storeHealth?: StoreHealth };
  /** The audit export's state, for `GET /v1/status` (a node started by `startNode` has one). */
  auditExport?: () => AuditExportStatus | null;
  /** The node's snapshot service (`/v1/snapshots`); a node started by `startNode` has one once it runs. */
  snapshots?: () => SnapshotService | null;
  /** Where route schemas are compiled, at their first request (lazy-validators.ts); tests pass one to compile them all. */
  validators?: LazyValidators;
}

/** The lease protocol's step calls, refused while the `durable-steps` gate is off. */
const DURABLE_WORKER_ROUTES = new Set(['/v1/workers/steps', '/v1/workers/step', '/v1/workers/suspend']);
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const CLOSE_CUTOFF_MS = 3_000;

export async function buildServer({ runtime, obs = {}, auditExport, snapshots = () => null, validators = lazyValidators() }: ServerDeps): Promise<FastifyInstance> {
  const { server, limits, auth } = runtime.config;
  // With `server.tls` this is an https server; routes and hooks do not care which.
  const app = Fastify({
    ...listenerOptions(server),
    // Errors Node raises before a request exists (431, 400 on a broken request line, 408) get problem+json too.
    clientErrorHandler: clientErrorHandler(runtime.logger as FastifyBaseLogger),
    loggerInstance: runtime.logger as FastifyBaseLogger,
    // No line per request (OPERATIONS.md: logs per attempt outcome, not per poll); 5xx are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'request_id' }),
    bodyLimit: runtime.config.limits.maxPayloadBytes,
    // Accept the caller's X-Request-Id when it is sane, so logs join across services.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    return503OnClosing: true,
    // Errors raised before routing (a bad %-escape in the path) get problem+json like every other error.
    frameworkErrors: (error, request, reply) => {
      reply.header('x-request-id', request.id);
      return sendProblem(reply, request, toDroverError(error));
    },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true, discriminator: true, allowUnionTypes: true } },
    schemaController: { compilersFactory: { buildValidator: validators.buildValidator } },
  }) as unknown as FastifyInstance;
  applyListenerLimits(app, server);
  registerJsonLimits(app, { maxDepth: limits.maxJsonDepth, maxMembers: limits.maxJsonMembers });

  registerProblemHandlers(app);
  // Before any hook that may answer early, so refusals carry the headers too; it never answers itself.
  registerSecurityHeaders(app, { tls: server.tls !== null });
  // First hooks: the request span and the HTTP metrics see every request, refused ones included.
  registerRequestTracing(app, runtime.tracing);
  if (obs.metrics) registerHttpMetrics(app, obs.metrics);
  // The hooks every request runs are callback hooks where they never wait: an async hook costs each request a promise and a tick.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    done();
  });
  // While the store is known unreachable, store-bound requests (all of /v1, key checks included) are
  // refused at once with 503 and Retry-After: otherwise each would hang until its own deadline. One
  // already waiting on the store when it turns unreachable is answered so then (its late result is
  // dropped; like any answer lost to a timeout, it may have committed: clients retry with their keys).
  const storeHealth = obs.storeHealth;
  if (storeHealth) {
    app.addHook('onRequest', (request, reply, done) => {
      // /mcp authenticates against the store like /v1 (its tools go through /v1 anyway).
      if (!request.url.startsWith('/v1/') && request.url !== '/mcp' && !request.url.startsWith('/mcp?')) return done();
      // Answered here: the chain stops (a callback hook that sends does not call done).
      if (!storeHealth.reachable) return void sendProblem(reply, request, storeHealth.unavailable());
      const off = storeHealth.onUnreachable(() => {
        if (!reply.sent && !reply.raw.headersSent) void sendProblem(reply, request, storeHealth.unavailable());
      });
      reply.raw.once('finish', off).once('close', off);
      done();
    });
  }
  const verifier = new KeyVerifier(runtime.store, runtime.clock, { maxFailures: auth.maxFailures, windowMs: auth.failureWindowMs });
  // With the console off, no cookie authenticates anything: sign-in answers 404 and only bearer keys work.
  const sessions = runtime.config.console.enabled ? new ConsoleSessions(runtime.store, runtime.clock, runtime.config.console.sessionTtlMs) : undefined;
  registerAuth(app, verifier, sessions);
  // The `remote-workers` gate stops new leases only: jobs already leased may still report, so nothing runs twice.
  app.addHook('preHandler', (request, reply, done) => {
    // Read once: `routeOptions` is a getter that builds a new object on every access.
    const url = request.routeOptions.url ?? '';
    if (url === '/v1/workers/lease' && !runtime.gates.enabled('remote-workers')) {
      return void sendProblem(reply, request, new DroverError('feature_disabled', 'remote workers are turned off on this node (feature gate remote-workers); jobs already leased may still report', { retryAfterSeconds: 30 }));
    }
    if (DURABLE_WORKER_ROUTES.has(url) && !runtime.gates.enabled('durable-steps')) {
      return void sendProblem(reply, request, new DroverError('feature_disabled', 'durable steps are turned off on this node (feature gate durable-steps); the attempt fails and the job runs again at its next retry', { retryAfterSeconds: 30 }));
    }
    done();
  });
  // Intake is refused while draining; reads, probes and remote workers' reports (`duringDrain`) keep answering.
  app.addHook('preHandler', (request, reply, done) => {
    if (request.method === 'POST' && runtime.state !== 'running' && request.routeOptions.url?.startsWith('/v1/') && !request.routeOptions.config?.duringDrain) {
      return void sendProblem(reply, request, new DroverError('shutting_down', 'this node is draining and accepts no new work; send to another node or retry', { retryAfterSeconds: 5 }));
    }
    done();
  });

  // close() waits for every open socket, and closeIdleConnections() skips sockets that never sent a
  // request (a client's spare keep-alive connection): they would hold shutdown until they time out.
  // Requests still in flight when close() starts get CLOSE_CUTOFF_MS to finish.
  let cutoff: NodeJS.Timeout | undefined;
  app.addHook('preClose', async () => {
    cutoff = setTimeout(() => app.server.closeAllConnections(), CLOSE_CUTOFF_MS);
    cutoff.unref();
  });
  app.addHook('onClose', async () => clearTimeout(cutoff));

  // Both collect routes as they are added: register before any route.
  await registerOpenApi(app);
  await registerRateLimit(app, runtime.config.rateLimit);

  await app.register(healthRoutes(runtime, obs.readiness));
  await app.register(intakeRoutes(runtime));
  await app.register(jobRoutes(runtime));
  await app.register(interruptRoutes(runtime));
  await app.register(statusRoutes(runtime, auditExport));
  await app.register(controlRoutes(runtime));
  await app.register(workerRoutes(runtime));
  await app.register(streamRoutes(runtime));
  await app.register(keyRoutes(runtime, verifier));
  await app.register(auditRoutes(runtime));
  await app.register(triggerRoutes(runtime));
  await app.register(mcpRoutes(runtime));
  await app.register(adminRoutes(runtime));
  await app.register(snapshotRoutes({ snapshots, audit: runtime.audit }));
  await app.register(rolloutRoutes(runtime));
  const bulk = new BulkJobs({ store: runtime.store, jobControl: runtime.jobControl, clock: runtime.clock, nodeId: runtime.workerId });
  await app.register(bulkJobRoutes({ bulk, audit: runtime.audit }));
  await app.register(sessionRoutes({ verifier, sessions, secureCookie: server.tls !== null }));
  if (runtime.config.console.enabled) await app.register(consoleRoutes());
  if (obs.metrics && obs.serveMetrics !== false) await app.register(metricsRoutes(obs.metrics));
  return app;
}
