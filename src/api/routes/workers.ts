/**
 * Remote workers (docs/remote-workers.md): lease jobs over HTTP, heartbeat,
 * and complete, fail or release them with the lease token.
 *
 * Every outcome is fenced by the token in the store: a stale token (the job
 * was reaped, cancelled, released or leased again) gets 409 `stale-lease` and
 * changes nothing. A failure is decided here, with the handler's retry policy,
 * exactly as for in-process jobs. Leasing long-polls up to `waitMs`, woken by
 * the store's work notifications and by resumes, so a waiting worker gets a
 * new job as soon as it is committed.
 *
 * A work key leases only handlers in its scope, and only the key that took a
 * lease may act on it (`work-scope.ts`); the key's id is stored with the lease.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { decideFailure } from '../../core/backoff.js';
import { DroverError } from '../../core/errors.js';
import type { DeadReason, JobRow, LeasedJob } from '../../core/types.js';
import type { Runtime } from '../../runtime/runtime.js';
import type { FenceResult } from '../../store/engine.js';
import { eventJson, shown, jobJson } from '../serialize.js';
import { routeConfig } from './scopes.js';
import { assertMayLease, assertMayTouch, leasableHandlers } from './work-scope.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Accepted while the node drains (workers must be able to report what they hold). */
    duringDrain?: boolean;
  }
}

export const LEASE_LIMITS = {
  maxJobs: 100,
  leaseMs: { min: 1_000, max: 3_600_000, default: 30_000 },
  waitMs: { max: 60_000, default: 0 },
} as const;
/** Without a notification, look again this often anyway (another node's enqueue on a store without cross-process notify). */
const RELEASE_CHECK_MS = 5_000;
/** How often a waiting lease checks that its client and the node are still there. */
const WAIT_TICK_MS = 500;

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

export function workerRoutes(runtime: Runtime) {
  const { store, lifecycle, config } = runtime;
  /** When each remote attempt started (for durations); entries go when the attempt ends. Bounded. */
  const started = new Map<string, number>();
  const waiting = new Set<() => void>();
  let closing = false;

  const remoteId = (request: FastifyRequest, given: string | undefined) =>
    // Prefixed so a remote worker can never share the node's own worker id (whose leases a restart reclaims).
    `remote:${given ?? request.apiKey?.id ?? 'anonymous'}`;
  const origin = (request: FastifyRequest, workerId: string) => ({ remote: { requestId: String(request.id), workerId } });
  const asLeased = (job: JobRow, token: string): LeasedJob => ({ ...job, leaseToken: token, leaseExpiresAt: job.leaseExpiresAt ?? 0, event: null });

  function fenced(request: FastifyRequest, op: 'complete' | 'fail' | 'heartbeat' | 'release', result: FenceResult, before: JobRow | null, token: string): JobRow {
    if (result.ok) return result.job;
    if (result.reason === 'not_found') throw new DroverError('not_found', `no job with id "${(request.body as FenceBody).jobId}"`);
    if (before) lifecycle.emit('job:stale', { job: asLeased(before, token), op, ...origin(request, before.workerId ?? 'unknown') });
    throw new DroverError('stale_lease', 'the lease token is no longer valid (the job was reaped, cancelled, released or leased again); stop working on this job, nothing was changed', {
      extensions: { jobId: (request.body as FenceBody).jobId },
    });
  }

  /** Scope and key binding, checked on the row before the fenced write (admin keys skip the read). */
  async function guard(request: FastifyRequest, op: 'heartbeat' | 'complete' | 'release', jobId: string, token: string): Promise<void> {
    if (!request.apiKey || request.apiKey.scopes.includes('admin')) return;
    assertMayTouch(request, op, config.handlers, await store.getJob(jobId), token);
  }

  async function durationOf(jobId: string, attempt: number): Promise<number> {
    let at = started.get(jobId);
    started.delete(jobId);
    if (at === undefined) {
      // Leased through another node, or before a restart: the attempt row knows.
      at = (await store.getAttempts(jobId)).find((a) => a.attempt === attempt)?.startedAt;
    }
    return at === undefined ? 0 : Math.max(0, runtime.clock() - at);
  }

  /** Lease, waiting up to `waitMs` for work; `gone` when the client disconnected meanwhile. */
  async function leaseWaiting(request: FastifyRequest<{ Body: LeaseBody }>, reply: FastifyReply, workerId: string): Promise<{ jobs: LeasedJob[]; gone: boolean }> {
    const body = request.body;
    const max = body.max ?? 1;
    // Held as the node's own dispatcher holds them: paused, quarantined, breaker open or probing, rate-limited.
    const lease = async () => {
      const handlers = body.handlers.map((name) => ({ name, max: runtime.admission.remoteRoom(config.handlers.get(name)!, max) })).filter((h) => h.max > 0);
      if (handlers.length === 0) return [];
      const leased = await store.lease({
        workerId,
        keyId: request.apiKey?.id ?? null,
        handlers,
        limit: max,
        leaseMs: body.leaseMs ?? LEASE_LIMITS.leaseMs.default,
        excludeQueues: runtime.pauses.pausedQueues(),
      });
      const admitted: LeasedJob[] = [];
      const held: Array<Promise<unknown>> = [];
      for (const job of leased) {
        const until = await runtime.admission.admit(job, config.handlers.get(job.handler)!);
        if (until === null) admitted.push(job);
        // Over its key's rate limit: back to the store unspent, due when the key has room.
        else held.push(store.release(job.id, job.leaseToken, until).then((r) => r.ok && runtime.noteScheduled(until)));
      }
      await Promise.all(held);
      // Handed to the remote worker, which runs them at once: started, so a
      // worker that dies on one counts a crash toward poisonAfter.
      const marks = await Promise.all(admitted.map((job) => store.start(job.id, job.leaseToken)));
      return admitted.filter((_, i) => marks[i]!.ok);
    };
    const waitMs = body.waitMs ?? LEASE_LIMITS.waitMs.default;
    const deadline = performance.now() + waitMs;
    let signalled = false;
    let gone = false;
    let wake: (() => void) | null = null;
    const poke = () => {
      signalled = true;
      wake?.();
    };
    const onClose = () => {
      gone = !reply.raw.writableFinished;
      poke();
    };
    // Subscribe before the first look, so work committed between the look and the wait is not missed.
    const offWork = store.onWork(poke);
    const offHandler = lifecycle.on('handler:changed', poke);
    // Quarantine cleared, breaker half-open or closed: held jobs may be leased now.
    const offSupervision = lifecycle.on('handler:supervision', poke);
    const offQueue = lifecycle.on('queue:changed', poke);
    waiting.add(poke);
    reply.raw.on('close', onClose);
    try {
      let lastLook = 0;
      for (;;) {
        signalled = false;
        lastLook = performance.now();
        const jobs = await lease();
        if (jobs.length > 0 || gone) return { jobs, gone };
        for (;;) {
          const left = deadline - performance.now();
          if (left <= 0 || gone || closing || runtime.state !== 'running') return { jobs: [], gone };
          if (signalled || performance.now() - lastLook >= RELEASE_CHECK_MS) break;
          let timer: NodeJS.Timeout | undefined;
          await new Promise<void>((resolve) => {
            wake = resolve;
            timer = setTimeout(resolve, Math.min(left, WAIT_TICK_MS));
          });
          wake = null;
          clearTimeout(timer);
        }
      }
    } finally {
      offWork();
      offHandler();
      offSupervision();
      offQueue();
      waiting.delete(poke);
      reply.raw.off('close', onClose);
      if (gone) request.log.debug({ worker_id: workerId }, 'lease client went away while waiting');
    }
  }

  return async function plugin(app: FastifyInstance): Promise<void> {
    app.addHook('preClose', async () => {
      closing = true;
      for (const poke of waiting) poke();
    });

    app.post<{ Body: LeaseBody }>('/v1/workers/lease', { config: routeConfig('POST /v1/workers/lease'), schema: { body: leaseBody } }, async (request, reply) => {
      const unknown = request.body.handlers.filter((name) => !config.handlers.has(name));
      if (unknown.length > 0) {
        throw new DroverError('unknown_handler', `no handler named ${unknown.map((n) => `"${n}"`).join(', ')}; this key may lease: ${leasableHandlers(request, config.handlers).join(', ') || '(none)'}`, {
          extensions: { handlers: unknown },
        });
      }
      assertMayLease(request, config.handlers, request.body.handlers);
      const workerId = remoteId(request, request.body.workerId);
      const { jobs, gone } = await leaseWaiting(request, reply, workerId);
      if (jobs.length > 0 && (gone || reply.raw.destroyed)) {
        // The client left while the lease was being written: hand the jobs straight back.
        await Promise.all(jobs.map((job) => store.release(job.id, job.leaseToken)));
        return reply;
      }
      const now = runtime.clock();
      for (const job of jobs) {
        if (started.size > 100_000) started.clear(); // durations fall back to the attempt rows
        started.set(job.id, now);
        lifecycle.emit('job:start', { job, waitMs: Math.max(0, now - job.runAt), ...origin(request, workerId) });
      }
      return { jobs: jobs.map(leasedJobJson) };
    });

    app.post<{ Body: FenceBody & { leaseMs?: number } }>(
      '/v1/workers/heartbeat',
      { config: { ...routeConfig('POST /v1/workers/heartbeat'), duringDrain: true }, schema: { body: fenceBody({ leaseMs }) } },
      async (request) => {
        const { jobId, token } = request.body;
        await guard(request, 'heartbeat', jobId, token);
        const result = await store.heartbeat(jobId, token, request.body.leaseMs ?? LEASE_LIMITS.leaseMs.default);
        const job = fenced(request, 'heartbeat', result, result.ok ? null : await store.getJob(jobId), token);
        return { id: job.id, state: job.state, leaseExpiresAt: job.leaseExpiresAt === null ? null : new Date(job.leaseExpiresAt).toISOString() };
      },
    );

    app.post<{ Body: FenceBody & { result?: unknown } }>(
      '/v1/workers/complete',
      { config: { ...routeConfig('POST /v1/workers/complete'), duringDrain: true }, schema: { body: fenceBody({ result: {} }) } },
      async (request) => {
        const { jobId, token } = request.body;
        await guard(request, 'complete', jobId, token);
        const result = await store.complete(jobId, token, request.body.result === undefined ? null : request.body.result);
        const job = fenced(request, 'complete', result, result.ok ? null : await store.getJob(jobId), token);
        const durationMs = await durationOf(job.id, job.attempts);
        lifecycle.emit('job:succeeded', { job: asLeased(job, token), durationMs, ...origin(request, job.workerId ?? 'unknown') });
        return jobJson(job);
      },
    );

    app.post<{ Body: FenceBody & { error: string; nonRetryable?: boolean } }>(
      '/v1/workers/fail',
      {
        config: { ...routeConfig('POST /v1/workers/fail'), duringDrain: true },
        schema: { body: fenceBody({ error: { type: 'string', maxLength: 65_536 }, nonRetryable: { type: 'boolean' } }, ['error']) },
      },
      async (request) => {
        const { jobId, token } = request.body;
        const before = await store.getJob(jobId);
        if (!before) throw new DroverError('not_found', `no job with id "${jobId}"`);
        assertMayTouch(request, 'fail', config.handlers, before, token);
        // Not running: certainly stale. A wrong token on a running job is fenced by the store below.
        if (before.state !== 'running') fenced(request, 'fail', { ok: false, reason: 'stale_lease' }, before, token);
        const handler = config.handlers.get(before.handler);
        // A handler removed from the config since the job was leased has no policy left: the job is dead.
        const decision: { retryAt: number } | { retryAt: null; deadReason: DeadReason } = handler
          ? decideFailure({
              attempt: before.attempts,
              maxAttempts: before.maxAttempts,
              nonRetryable: request.body.nonRetryable === true,
              now: runtime.clock(),
              backoff: handler.backoff,
              random: Math.random,
            })
          : { retryAt: null, deadReason: 'unknown_handler' };
        const error = request.body.error.slice(0, 8192) || 'remote worker reported a failure without a message';
        const result = await store.fail(jobId, token, {
          error,
          outcome: 'failed',
          retryAt: decision.retryAt,
          ...(decision.retryAt === null ? { deadReason: decision.deadReason } : {}),
        });
        const job = fenced(request, 'fail', result, before, token);
        const durationMs = await durationOf(job.id, job.attempts);
        const failure = new Error(error.split('\n')[0] ?? error);
        failure.stack = error;
        lifecycle.emit('job:failed', {
          job: asLeased(before, token),
          durationMs,
          outcome: 'failed',
          error: failure,
          retryAt: decision.retryAt,
          deadReason: decision.retryAt === null ? decision.deadReason : null,
          killed: false,
          ...origin(request, before.workerId ?? 'unknown'),
        });
        if (decision.retryAt !== null) runtime.noteScheduled(decision.retryAt);
        return { ...jobJson(job), retryAt: decision.retryAt === null ? null : new Date(decision.retryAt).toISOString() };
      },
    );

    app.post<{ Body: FenceBody }>(
      '/v1/workers/release',
      { config: { ...routeConfig('POST /v1/workers/release'), duringDrain: true }, schema: { body: fenceBody() } },
      async (request) => {
        const { jobId, token } = request.body;
        await guard(request, 'release', jobId, token);
        const result = await store.release(jobId, token);
        const job = fenced(request, 'release', result, result.ok ? null : await store.getJob(jobId), token);
        started.delete(job.id);
        lifecycle.emit('job:released', { job: asLeased(job, token), reason: 'shutdown', ...origin(request, job.workerId ?? 'unknown') });
        return jobJson(job);
      },
    );
  };
}
