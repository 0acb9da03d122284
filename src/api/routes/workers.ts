/**
 * Remote workers (docs/remote-workers.md): lease jobs over HTTP, heartbeat,
 * and complete, fail or release them with the lease token.
 *
 * The transitions themselves (leasing through admission, the long-poll, the
 * fenced settles, the failure policy, the lifecycle events) are made by the
 * runtime (`runtime/remote-workers.ts`), as for the node's own jobs. This
 * route holds the HTTP side: schemas, status codes, and the work key's
 * scope: a work key leases only handlers in its scope, and only the key that
 * took a lease may act on it (`work-scope.ts`); the key's id is stored with
 * the lease.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ResolvedConfig } from '../../core/config.js';
import { DroverError } from '../../core/errors.js';
import type { JobRow, LeasedJob } from '../../core/types.js';
import { LEASE_LIMITS } from '../../core/lease-limits.js';
import { RemoteWorkers, type LeaseClient } from '../../runtime/remote-workers.js';
import { eventJson, shown, jobJson } from '../serialize.js';
import { routeConfig } from './scopes.js';
import { assertMayLease, assertMayTouch, leasableHandlers, type WorkOp } from './work-scope.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Accepted while the node drains (workers must be able to report what they hold). */
    duringDrain?: boolean;
  }
}

/** What the worker routes need from the node (the runtime provides it). */
export interface WorkerRouteDeps {
  config: Pick<ResolvedConfig, 'handlers'>;
  remoteWorkers: Pick<RemoteWorkers, 'lease' | 'heartbeat' | 'complete' | 'fail' | 'release' | 'stopWaiting'>;
}

const id = { type: 'string', minLength: 1, maxLength: 200 } as const;
const leaseMs = { type: 'integer', minimum: LEASE_LIMITS.leaseMs.min, maximum: LEASE_LIMITS.leaseMs.max } as const;

const leaseBody = {
  type: 'object',
  required: ['handlers'],
  additionalProperties: false,
  properties: {
    workerId: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,100}$' },
    handlers: { type: 'array', minItems: 1, maxItems: 100, uniqueItems: true, items: { type: 'string', minLength: 1, maxLength: 100 } },
    max: { type: 'integer', minimum: 1, maximum: LEASE_LIMITS.maxJobs },
    leaseMs,
    waitMs: { type: 'integer', minimum: 0, maximum: LEASE_LIMITS.waitMs.max },
  },
} as const;

const fenceBody = (extra: Record<string, object> = {}, required: string[] = []) =>
  ({
    type: 'object',
    required: ['jobId', 'token', ...required],
    additionalProperties: false,
    properties: { jobId: id, token: id, ...extra },
  }) as const;

interface LeaseBody {
  workerId?: string;
  handlers: string[];
  max?: number;
  leaseMs?: number;
  waitMs?: number;
}
interface FenceBody {
  jobId: string;
  token: string;
}

/** A leased job as a remote worker gets it. */
export function leasedJobJson(job: LeasedJob) {
  const omitted: Record<string, string> = {};
  return {
    id: job.id,
    handler: job.handler,
    queue: job.queue,
    payload: shown(job.payload, 'payload', omitted),
    attempt: job.attempts,
    maxAttempts: job.maxAttempts,
    priority: job.priority,
    leaseToken: job.leaseToken,
    leaseExpiresAt: new Date(job.leaseExpiresAt).toISOString(),
    eventId: job.eventId,
    event: job.event ? eventJson(job.event) : null,
    traceparent: job.traceparent,
    runAt: new Date(job.runAt).toISOString(),
    createdAt: new Date(job.createdAt).toISOString(),
    ...(Object.keys(omitted).length > 0 ? { omitted } : {}),
  };
}

export function workerRoutes(deps: WorkerRouteDeps) {
  const { config, remoteWorkers: workers } = deps;

  /** Scope and key binding, checked on the row before the fenced write; admin keys skip it (and the read). */
  const check = (request: FastifyRequest, op: WorkOp, token: string) =>
    !request.apiKey || request.apiKey.scopes.includes('admin') ? {} : { check: (job: JobRow | null) => assertMayTouch(request, op, config.handlers, job, token) };

  /** The connection a lease answers on: it is gone when it closed before the answer was written. */
  const clientOf = (reply: FastifyReply): LeaseClient => {
    let closed = false;
    return {
      onClose(listener) {
        const onClose = () => {
          closed = !reply.raw.writableFinished;
          listener();
        };
        reply.raw.on('close', onClose);
        return () => reply.raw.off('close', onClose);
      },
      gone: () => closed || reply.raw.destroyed,
    };
  };

  return async function plugin(app: FastifyInstance): Promise<void> {
    app.addHook('preClose', async () => workers.stopWaiting());

    app.post<{ Body: LeaseBody }>('/v1/workers/lease', { config: routeConfig('POST /v1/workers/lease'), schema: { body: leaseBody } }, async (request, reply) => {
      const unknown = request.body.handlers.filter((name) => !config.handlers.has(name));
      if (unknown.length > 0) {
        throw new DroverError('unknown_handler', `no handler named ${unknown.map((n) => `"${n}"`).join(', ')}; this key may lease: ${leasableHandlers(request, config.handlers).join(', ') || '(none)'}`, {
          extensions: { handlers: unknown },
        });
      }
      assertMayLease(request, config.handlers, request.body.handlers);
      const { body } = request;
      const { jobs, gone } = await workers.lease(
        {
          handlers: body.handlers,
          keyId: request.apiKey?.id ?? null,
          requestId: String(request.id),
          ...(body.workerId === undefined ? {} : { workerId: body.workerId }),
          ...(body.max === undefined ? {} : { max: body.max }),
          ...(body.leaseMs === undefined ? {} : { leaseMs: body.leaseMs }),
          ...(body.waitMs === undefined ? {} : { waitMs: body.waitMs }),
        },
        clientOf(reply),
      );
      if (gone) request.log.debug({ worker_id: RemoteWorkers.workerId(body.workerId, request.apiKey?.id ?? null) }, 'lease client went away while waiting');
      // The client left while the lease was being written: the jobs went straight back.
      if (jobs === null) return reply;
      return { jobs: jobs.map(leasedJobJson) };
    });

    app.post<{ Body: FenceBody & { leaseMs?: number } }>(
      '/v1/workers/heartbeat',
      { config: { ...routeConfig('POST /v1/workers/heartbeat'), duringDrain: true }, schema: { body: fenceBody({ leaseMs }) } },
      async (request) => {
        const { jobId, token, leaseMs } = request.body;
        const job = await workers.heartbeat({ jobId, token, requestId: String(request.id), ...(leaseMs === undefined ? {} : { leaseMs }), ...check(request, 'heartbeat', token) });
        return { id: job.id, state: job.state, leaseExpiresAt: job.leaseExpiresAt === null ? null : new Date(job.leaseExpiresAt).toISOString() };
      },
    );

    app.post<{ Body: FenceBody & { result?: unknown } }>(
      '/v1/workers/complete',
      { config: { ...routeConfig('POST /v1/workers/complete'), duringDrain: true }, schema: { body: fenceBody({ result: {} }) } },
      async (request) => {
        const { jobId, token } = request.body;
        const result = request.body.result === undefined ? null : request.body.result;
        return jobJson(await workers.complete({ jobId, token, result, requestId: String(request.id), ...check(request, 'complete', token) }));
      },
    );

    app.post<{ Body: FenceBody & { error: string; nonRetryable?: boolean } }>(
      '/v1/workers/fail',
      {
        config: { ...routeConfig('POST /v1/workers/fail'), duringDrain: true },
        schema: { body: fenceBody({ error: { type: 'string', maxLength: 65_536 }, nonRetryable: { type: 'boolean' } }, ['error']) },
      },
      async (request) => {
        const { jobId, token, error } = request.body;
        const { job, retryAt } = await workers.fail({
          jobId,
          token,
          error,
          nonRetryable: request.body.nonRetryable === true,
          requestId: String(request.id),
          check: (row) => assertMayTouch(request, 'fail', config.handlers, row, token),
        });
        return { ...jobJson(job), retryAt: retryAt === null ? null : new Date(retryAt).toISOString() };
      },
    );

    app.post<{ Body: FenceBody }>(
      '/v1/workers/release',
      { config: { ...routeConfig('POST /v1/workers/release'), duringDrain: true }, schema: { body: fenceBody() } },
      async (request) => {
        const { jobId, token } = request.body;
        return jobJson(await workers.release({ jobId, token, requestId: String(request.id), ...check(request, 'release', token) }));
      },
    );
  };
}
