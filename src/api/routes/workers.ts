/**
 * Remote workers (docs/remote-workers.md): lease jobs over HTTP, heartbeat,
 * and complete, fail or release them with the lease token; durable steps
 * (read the stored steps, store one, suspend) with the same token.
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
import { checkStepName, type DurableLimits, type StepRow, type SuspendReason, type WaitMatch, type WaitRow } from '../../core/durable.js';
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
  config: Pick<ResolvedConfig, 'handlers' | 'durable'>;
  remoteWorkers: Pick<RemoteWorkers, 'lease' | 'heartbeat' | 'complete' | 'fail' | 'release' | 'stopWaiting' | 'steps'>;
}

const id = { type: 'string', minLength: 1, maxLength: 200 } as const;

/** Names the lease caps that held jobs back in a lease answer: `tenant`, `worker`, `key` (comma-separated). */
export const LEASE_CAPPED_HEADER = 'drover-lease-capped';
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

/** A time: ms since the epoch, or an ISO 8601 string (as `runAt` of POST /v1/jobs). */
const time = { anyOf: [{ type: 'integer', minimum: 0 }, { type: 'string', format: 'date-time' }] } as const;
const stepFields = {
  seq: { type: 'integer', minimum: 0, maximum: 1_000_000 },
  startedAt: time,
} as const;

const stepBody = fenceBody(
  { name: { type: 'string', minLength: 1, maxLength: 200 }, ...stepFields, kind: { type: 'string', enum: ['run'] }, result: {} },
  ['name', 'seq', 'startedAt'],
);

const suspendBody = fenceBody(
  {
    step: { type: 'string', minLength: 1, maxLength: 200 },
    ...stepFields,
    kind: { type: 'string', enum: ['sleep', 'event', 'interrupt'] },
    wakeAt: time,
    timeoutMs: { type: 'integer', minimum: 0, maximum: 10 * 365 * 24 * 3_600_000 },
    events: { type: 'array', minItems: 1, maxItems: 20, uniqueItems: true, items: { type: 'string', minLength: 1, maxLength: 200 } },
    match: { type: 'object', maxProperties: 20, additionalProperties: { type: ['string', 'number', 'boolean', 'null'] } },
    prompt: { type: 'string', minLength: 1, maxLength: 10_000 },
    schema: { type: 'object' },
  },
  ['step', 'seq', 'kind', 'startedAt'],
);

type Time = number | string;
interface StepBody extends FenceBody {
  name: string;
  seq: number;
  kind?: 'run';
  startedAt: Time;
  result?: unknown;
}
interface SuspendBody extends FenceBody {
  step: string;
  seq: number;
  kind: SuspendReason;
  startedAt: Time;
  wakeAt?: Time;
  timeoutMs?: number;
  events?: string[];
  match?: WaitMatch;
  prompt?: string;
  schema?: object;
}

const msOf = (value: Time): number => (typeof value === 'number' ? value : Date.parse(value));
const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** A stored step as a remote worker reads it: its result whole (the worker returns it to the handler). */
export function stepJson(step: StepRow) {
  return {
    name: step.name,
    seq: step.seq,
    kind: step.kind,
    attempt: step.attempt,
    startedAt: iso(step.startedAt),
    finishedAt: iso(step.finishedAt),
    result: step.result,
    resultBytes: step.resultBytes,
    timedOut: step.timedOut,
  };
}

/** The wait a suspended job is on, as the worker that suspended it sees it. */
export function suspendedWaitJson(wait: WaitRow) {
  return {
    id: wait.id,
    step: wait.step,
    seq: wait.seq,
    kind: wait.kind,
    state: wait.state,
    createdAt: iso(wait.createdAt),
    wakeAt: iso(wait.wakeAt),
    ...(wait.kind === 'event' ? { events: wait.events, match: wait.match } : {}),
    ...(wait.kind === 'interrupt' ? { prompt: wait.prompt } : {}),
  };
}

/** 422 with the failing field, as a schema failure reads. */
function invalid(path: string, message: string): DroverError {
  return new DroverError('validation', `${path}: ${message}`, { extensions: { errors: [{ path, message }] } });
}

/** What each kind of suspend needs beyond the schema: the fields that make its wait, checked together. */
function suspendRequest(body: SuspendBody) {
  const nameProblem = checkStepName(body.step);
  if (nameProblem) throw invalid('body.step', nameProblem);
  const startedAt = msOf(body.startedAt);
  const wakeAt = body.wakeAt !== undefined ? msOf(body.wakeAt) : body.timeoutMs !== undefined ? startedAt + body.timeoutMs : null;
  if (body.kind === 'sleep' && wakeAt === null) throw invalid('body.wakeAt', 'a sleep needs wakeAt (when it ends) or timeoutMs (how long, from startedAt)');
  if (body.kind !== 'event' && (body.events !== undefined || body.match !== undefined)) throw invalid('body.events', 'events and match belong to kind "event" only');
  if (body.kind !== 'interrupt' && (body.prompt !== undefined || body.schema !== undefined)) throw invalid('body.prompt', 'prompt and schema belong to kind "interrupt" only');
  if (body.kind === 'event' && body.events === undefined) throw invalid('body.events', 'a wait for an event needs events: the event names, any of which resolves it');
  if (body.kind === 'interrupt' && body.prompt === undefined) throw invalid('body.prompt', 'an interrupt needs prompt: what the person is asked');
  return {
    step: body.step,
    seq: body.seq,
    kind: body.kind,
    startedAt,
    wakeAt,
    ...(body.events === undefined ? {} : { events: body.events }),
    ...(body.match === undefined ? {} : { match: body.match }),
    ...(body.prompt === undefined ? {} : { prompt: body.prompt }),
    ...(body.schema === undefined ? {} : { schema: body.schema }),
  };
}

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
  const limits: DurableLimits = config.durable;

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
      const { jobs, gone, capped } = await workers.lease(
        {
          handlers: body.handlers,
          keyId: request.apiKey?.id ?? null,
          ...(request.apiKey ? { keyName: request.apiKey.name } : {}),
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
      // Fewer jobs than asked because a lease cap held them back (docs/api.md): say which, so a worker
      // at its own cap can tell "hold what you have" from "nothing to do".
      if (capped.length > 0) reply.header(LEASE_CAPPED_HEADER, capped.join(', '));
      return { jobs: jobs.map(leasedJobJson), capped };
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

    app.post<{ Body: FenceBody }>(
      '/v1/workers/steps',
      { config: { ...routeConfig('POST /v1/workers/steps'), duringDrain: true }, schema: { body: fenceBody() } },
      async (request) => {
        const { jobId, token } = request.body;
        const steps = await workers.steps.steps({ jobId, token, requestId: String(request.id), ...check(request, 'steps', token) });
        return { steps: steps.map(stepJson) };
      },
    );

    app.post<{ Body: StepBody }>(
      '/v1/workers/step',
      { config: { ...routeConfig('POST /v1/workers/step'), duringDrain: true }, schema: { body: stepBody } },
      async (request) => {
        const { jobId, token, name, seq } = request.body;
        const nameProblem = checkStepName(name);
        if (nameProblem) throw invalid('body.name', nameProblem);
        const step = { name, seq, kind: 'run' as const, startedAt: msOf(request.body.startedAt), result: request.body.result === undefined ? null : request.body.result };
        return { step: stepJson(await workers.steps.record({ jobId, token, requestId: String(request.id), ...check(request, 'step', token) }, step, limits)) };
      },
    );

    app.post<{ Body: SuspendBody }>(
      '/v1/workers/suspend',
      { config: { ...routeConfig('POST /v1/workers/suspend'), duringDrain: true }, schema: { body: suspendBody } },
      async (request) => {
        const { jobId, token } = request.body;
        const suspended = await workers.steps.suspend({ jobId, token, requestId: String(request.id), ...check(request, 'suspend', token) }, suspendRequest(request.body));
        return suspended.suspended ? { suspended: true, wait: suspendedWaitJson(suspended.wait) } : { suspended: false, step: stepJson(suspended.step) };
      },
    );
  };
}
