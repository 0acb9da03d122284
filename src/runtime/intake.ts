/**
 * Intake turns what producers send (events, job requests) into rows for the
 * store: it checks meaning (the handler exists, names are valid, times make
 * sense) and resolves each handler's policy into the job. Shape checks happen
 * at the edge (route schemas); this layer is what the SDK and CLI share.
 */
import { randomUUID } from 'node:crypto';
import { concurrencyKeyFor, routeEventToTriggers, type ResolvedConfig, type ResolvedHandler } from '../core/config.js';
import { DroverError } from '../core/errors.js';
import { STRICT_PRIORITY_MS } from '../core/queue-policy.js';
import { validateEventName } from '../core/trigger.js';
import { groupKeyFor, type TriggerControl } from '../core/trigger-control.js';
import type { EventInput, NewJob } from '../core/types.js';
import type { IngestItem } from '../store/engine.js';

/** A request to run a handler directly, as the API and SDK accept it. */
export interface JobRequest {
  handler: string;
  payload?: unknown;
  queue?: string;
  priority?: number;
  /** When to run: epoch ms or an ISO-8601 string. */
  runAt?: number | string;
  /** Run after this many ms (alternative to runAt). */
  delayMs?: number;
  idempotencyKey?: string;
  maxAttempts?: number;
  /** Explicit concurrency key; overrides the handler's `concurrencyKey` source. */
  concurrencyKey?: string;
  /** The tenant the job runs for: lease caps and fairness (docs/configuration.md "Flow control"). */
  tenant?: string;
}

const ID_PATTERN = /^[\x21-\x7e]{1,200}$/;

export class Intake {
  constructor(
    private readonly config: ResolvedConfig,
    private readonly clock: () => number,
    /** Routes added at run time (webhook triggers): extra jobs for an event, each with its payload and, optionally, a debounce or throttle. */
    private readonly dynamicRoutes?: (event: { name: string; data: unknown }) => Array<{ handler: ResolvedHandler; payload: unknown; control?: { control: TriggerControl; group: string } }>,
  ) {}

  /** Resolve an event into the item the store ingests (event + its fan-out jobs). */
  eventItem(input: EventInput, traceparent: string | null = null): IngestItem {
    const name = validateEventName(input.name);
    if (input.id !== undefined && (typeof input.id !== 'string' || !ID_PATTERN.test(input.id))) {
      throw new DroverError('validation', 'id: expected 1–200 printable ASCII characters without spaces');
    }
    if (input.tenant !== undefined && (typeof input.tenant !== 'string' || !ID_PATTERN.test(input.tenant))) {
      throw new DroverError('validation', 'tenant: expected 1–200 printable ASCII characters without spaces');
    }
    const data = input.data === undefined ? null : input.data;
    const id = input.id ?? `evt_${randomUUID()}`;
    const tenant = input.tenant ?? null;
    const now = this.clock();
    const jobs = routeEventToTriggers(this.config.handlers.values(), { name, data }).map(({ handler, trigger, index }) => {
      const job = this.#newJob(handler, data, { eventId: id, tenant, now, traceparent });
      if (trigger.control !== null) {
        const groupKey = groupKeyFor(handler.name, index, trigger.control, data, tenant);
        job.control = { control: trigger.control, groupKey, maxPayloadBytes: this.config.limits.maxPayloadBytes };
      }
      return job;
    });
    for (const route of this.dynamicRoutes?.({ name, data }) ?? []) {
      const job = this.#newJob(route.handler, route.payload, { eventId: id, tenant, now, traceparent });
      if (route.control) {
        const groupKey = groupKeyFor(route.control.group, 0, route.control.control, data, tenant);
        job.control = { control: route.control.control, groupKey, maxPayloadBytes: this.config.limits.maxPayloadBytes };
      }
      jobs.push(job);
    }
    return { event: { id, name, data, ...(tenant === null ? {} : { tenant }) }, jobs };
  }

  /** Resolve a direct job request against its handler's policy. */
  job(request: JobRequest, traceparent: string | null = null): NewJob {
    const handler = this.handler(request.handler);
    const now = this.clock();
    if (request.tenant !== undefined && (typeof request.tenant !== 'string' || !ID_PATTERN.test(request.tenant))) {
      throw new DroverError('validation', 'tenant: expected 1–200 printable ASCII characters without spaces');
    }
    const job = this.#newJob(handler, request.payload ?? null, { eventId: null, tenant: request.tenant ?? null, now, traceparent });
    if (request.queue !== undefined) {
      const policy = this.config.queues.get(request.queue);
      if (!policy) {
        throw new DroverError('validation', `queue: no queue named "${request.queue}"; declared: ${[...this.config.queues.keys()].join(', ')}`);
      }
      job.queue = request.queue;
      job.priorityMs = policy.priorityMs;
    }
    if (request.priority !== undefined) job.priority = request.priority;
    if (request.maxAttempts !== undefined) job.maxAttempts = request.maxAttempts;
    if (request.idempotencyKey !== undefined) job.idempotencyKey = request.idempotencyKey;
    if (request.concurrencyKey !== undefined) {
      job.concurrencyKey = request.concurrencyKey;
      job.concurrencyLimit = handler.concurrencyLimit;
    }
    if (request.runAt !== undefined && request.delayMs !== undefined) {
      throw new DroverError('validation', 'runAt and delayMs: give one or the other, not both');
    }
    if (request.runAt !== undefined) job.runAt = parseTime(request.runAt, 'runAt');
    if (request.delayMs !== undefined) job.runAt = now + request.delayMs;
    return job;
  }

  handler(name: string): ResolvedHandler {
    const handler = this.config.handlers.get(name);
    if (!handler) {
      throw new DroverError('unknown_handler', `no handler named "${name}"; registered: ${[...this.config.handlers.keys()].join(', ') || '(none)'}`, {
        extensions: { handler: name },
      });
    }
    return handler;
  }

  #newJob(
    handler: ResolvedHandler,
    payload: unknown,
    context: { eventId: string | null; tenant: string | null; now: number; traceparent: string | null },
  ): NewJob {
    // Keys derived from the handler's policy are scoped to the handler: tenant
    // "acme" of handler A must not hold back tenant "acme" of handler B.
    const derived = concurrencyKeyFor(handler, payload, context.tenant);
    const concurrencyKey = derived === null ? null : `${handler.name}:${derived}`;
    return {
      handler: handler.name,
      queue: handler.queue,
      payload,
      priority: handler.priority,
      runAt: context.now,
      maxAttempts: handler.maxAttempts,
      idempotencyKey: null,
      concurrencyKey,
      concurrencyLimit: concurrencyKey === null ? null : handler.concurrencyLimit,
      eventId: context.eventId,
      traceparent: context.traceparent,
      tenant: context.tenant,
      priorityMs: this.config.queues.get(handler.queue)?.priorityMs ?? STRICT_PRIORITY_MS,
    };
  }
}

function parseTime(value: number | string, field: string): number {
  const ms = typeof value === 'number' ? value : Date.parse(value);
  if (!Number.isFinite(ms) || ms < 0) {
    throw new DroverError('validation', `${field}: expected epoch milliseconds or an ISO-8601 date-time, got ${JSON.stringify(value)}`);
  }
  return ms;
}
