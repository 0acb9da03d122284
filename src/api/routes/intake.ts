/**
 * Intake routes: events (fanned out to subscribed handlers) and direct jobs.
 * Both answer 2xx only after the write is committed; a batch is one transaction.
 */
import type { FastifyInstance } from 'fastify';
import type { EventInput } from '../../core/types.js';
import type { JobRequest } from '../../runtime/intake.js';
import type { Runtime } from '../../runtime/runtime.js';
import type { TriggerOutcome } from '../../store/engine.js';
import { createdJobJson, eventJson, jobJson, jobRef } from '../serialize.js';

const MAX_BATCH = 1000;
const idString = { type: 'string', minLength: 1, maxLength: 200 } as const;

export const eventSchema = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 200 },
    data: {},
    id: idString,
    tenant: idString,
  },
} as const;

export const jobSchema = {
  type: 'object',
  required: ['handler'],
  additionalProperties: false,
  properties: {
    handler: { type: 'string', minLength: 1, maxLength: 100 },
    payload: {},
    queue: { type: 'string', minLength: 1, maxLength: 100 },
    priority: { type: 'integer', minimum: -1000000, maximum: 1000000 },
    runAt: { anyOf: [{ type: 'integer', minimum: 0 }, { type: 'string', format: 'date-time' }] },
    delayMs: { type: 'integer', minimum: 0, maximum: 31536000000 },
    idempotencyKey: idString,
    maxAttempts: { type: 'integer', minimum: 1, maximum: 1000 },
    concurrencyKey: idString,
    tenant: idString,
  },
} as const;

function batchOf(itemSchema: object, key: string) {
  return {
    type: 'object',
    required: [key],
    additionalProperties: false,
    properties: { [key]: { type: 'array', minItems: 1, maxItems: MAX_BATCH, items: itemSchema } },
  };
}

/** What the intake routes need from the node (accepts events and jobs through the runtime): the runtime satisfies it. */
export type IntakeRouteDeps = Pick<Runtime, 'enqueueJobs' | 'ingestEvents'>;

export function intakeRoutes(runtime: IntakeRouteDeps) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    app.post<{ Body: EventInput | { events: EventInput[] } }>(
      '/v1/events',
      {
        config: { scope: 'produce' },
        schema: { body: { anyOf: [eventSchema, batchOf(eventSchema, 'events')] } },
      },
      async (request, reply) => {
        const body = request.body;
        const batch = 'events' in body && Array.isArray(body.events);
        const inputs = batch ? (body as { events: EventInput[] }).events : [body as EventInput];
        const results = await runtime.ingestEvents(inputs, traceparentOf(request.headers.traceparent));
        const shaped = results.map((r) => ({ ...eventJson(r.event), created: r.created, jobs: r.jobs.map((job) => withTrigger(jobRef(job), r.controls?.find((c) => c.jobId === job.id))) }));
        return reply.code(202).send(batch ? { events: shaped } : shaped[0]);
      },
    );

    app.post<{ Body: JobRequest | { jobs: JobRequest[] } }>(
      '/v1/jobs',
      {
        config: { scope: 'produce' },
        schema: { body: { anyOf: [jobSchema, batchOf(jobSchema, 'jobs')] } },
      },
      async (request, reply) => {
        const body = request.body;
        const batch = 'jobs' in body && Array.isArray(body.jobs);
        const inputs = batch ? (body as { jobs: JobRequest[] }).jobs : [body as JobRequest];
        const results = await runtime.enqueueJobs(inputs, traceparentOf(request.headers.traceparent));
        // `created` added in place, not by spreading each job into a copy (500 per batch). A replayed
        // job (idempotency key) shows its stored payload, which may predate the JSON limits.
        const shaped = results.map((r) => Object.assign(r.created ? createdJobJson(r.job) : jobJson(r.job), { created: r.created }));
        // 200 for an idempotent replay of a single job: nothing new was accepted.
        const status = !batch && results[0]?.created === false ? 200 : 202;
        return reply.code(status).send(batch ? { jobs: shaped } : shaped[0]);
      },
    );
  };
}

/**
 * A job ref with what a debounce, throttle or batch trigger did (docs/api.md
 * "Events"): `merged` when the event joined a job an earlier event opened.
 */
function withTrigger(ref: ReturnType<typeof jobRef>, control: TriggerOutcome | undefined) {
  if (!control) return ref;
  return { ...ref, trigger: control.kind === 'throttle' ? { kind: control.kind, delayedMs: control.delayedMs } : { kind: control.kind, merged: control.merged } };
}

/** Keep a W3C traceparent only when it is well formed. */
function traceparentOf(header: string | string[] | undefined): string | null {
  return typeof header === 'string' && /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/.test(header) ? header : null;
}
