/**
 * Intake: inserting jobs and events. Runs inside a group-commit write op.
 *
 * Idempotency is checked before the depth limit, so a duplicate of a job that
 * already exists is answered even when its queue is full (it adds nothing).
 */
import { STRICT_PRIORITY_MS } from '../../core/queue-policy.js';
import type { NewJob } from '../../core/types.js';
import type { EnqueueOptions, EnqueueResult, IngestItem, IngestResult } from '../engine.js';
import type { TriggerOutcome } from '../roles/job-store.js';
import { resolveByEvent } from './durable.js';
import type { DurableFixed } from './durable-statements.js';
import { addDepth, type QueueDepths, type WriteEffects } from './queue-depth.js';
import { newEventRow, newJobRow, storedNumber, storedText, toEventRow, toJobRow, toJson } from './rows.js';
import type { FixedStatements, NewEventValues, NewJobValues } from './statements.js';
import { eventMerges, ingestControlled, type TriggerStatements } from './trigger-groups.js';

/** What an intake op needs: statements, the depth counters, and the op's and batch's effects. */
export interface IntakeContext {
  s: FixedStatements;
  d: DurableFixed;
  t: TriggerStatements;
  depths: QueueDepths;
  now: number;
  options: EnqueueOptions | undefined;
  own: WriteEffects;
  batch: Readonly<WriteEffects>;
}

export function insertJob(ctx: IntakeContext, job: NewJob): EnqueueResult {
  const { s, now, own } = ctx;
  const key = job.idempotencyKey ?? null;
  if (key !== null) {
    const existing = s.jobByIdempotencyKey.get(job.handler, key);
    if (existing) return { job: toJobRow(existing), created: false };
  }
  ctx.depths.checkRoom(job.queue, ctx.options, ctx.batch, own);
  const state = job.runAt <= now ? 'queued' : 'scheduled';
  const payload = toJson(job.payload);
  const { echo } = s;
  const values: NewJobValues = [
    storedText(job.handler, echo),
    storedText(job.queue, echo),
    state,
    payload,
    storedText(job.eventId ?? null, echo),
    storedNumber(job.priority),
    storedNumber(job.runAt),
    storedNumber(job.maxAttempts),
    storedText(key, echo),
    storedText(job.concurrencyKey ?? null, echo),
    storedNumber(job.concurrencyLimit ?? null),
    storedText(job.traceparent ?? null, echo),
    storedText(job.tenant ?? null, echo),
    job.priorityMs ?? STRICT_PRIORITY_MS,
    fairTag(ctx, job),
    storedNumber(now),
    storedNumber(now),
  ];
  // No RETURNING (statements.ts): the row is built from what was inserted.
  const id = Number(s.insertJob.run(...values).lastInsertRowid);
  addDepth(own, job.queue, 1);
  if (state === 'queued') own.woken.add(job.queue, job.handler);
  return { job: newJobRow(id, values, JSON.parse(payload)), created: true };
}

/**
 * The job's turn in a fair queue (start-time fair queuing by tenant;
 * docs/configuration.md "Fairness across tenants"), 0 outside one:
 * `max(head, tail) + 1`, where head is the queue's smallest queued turn
 * (with nothing queued: its largest scheduled one, so a job back from a retry
 * backoff is not overtaken by turns restarting at 1) and tail the tenant's
 * largest waiting one (queued or scheduled). A tenant with a backlog lines its
 * jobs up one turn apart; a tenant with nothing waiting joins at the turn
 * after the head, so it waits for at most one job per active tenant (two
 * when its turn ties theirs). Inserts run one at a time inside the write
 * lock, so every job sees the ones inserted before it, also in one batch.
 */
function fairTag(ctx: IntakeContext, job: NewJob): number {
  if (ctx.options?.queueLimits?.get(job.queue)?.fairness !== 'tenant') return 0;
  const head = ctx.s.fairHead.get({ queue: job.queue })?.fair_tag ?? 0;
  const tail = ctx.s.fairTail.get(job.queue, job.tenant ?? null)?.fair_tag ?? 0;
  return Math.max(head, tail) + 1;
}

/**
 * A known event id answers with the original event and its jobs, writing
 * nothing. A new event also resolves the pending waits it satisfies, in the
 * same transaction (`resolvedWaits`, present only when there are some).
 */
export function ingestItem(ctx: IntakeContext, item: IngestItem): IngestResult {
  const { s } = ctx;
  const { id, name, data, tenant } = item.event;
  const existing = s.eventById.get(id);
  if (existing) {
    const jobs = s.jobsByEvent.all(id).map(toJobRow);
    // Jobs it was merged into: a debounced job's event_id names the latest event only.
    const merges = eventMerges(ctx.t, id).filter((m) => !jobs.some((j) => j.id === m.job.id));
    return { event: toEventRow(existing), jobs: [...jobs, ...merges.map((m) => m.job)], created: false };
  }
  const dataText = toJson(data);
  const values: NewEventValues = [storedText(id, s.echo), storedText(name, s.echo), dataText, storedText(tenant ?? null, s.echo), storedNumber(ctx.now)];
  s.insertEvent.run(...values);
  const event = newEventRow(values, JSON.parse(dataText));
  const controls: TriggerOutcome[] = [];
  const jobs = item.jobs.map((job) => {
    if (!job.control) return insertJob(ctx, { ...job, eventId: id }).job;
    const landed = ingestControlled(ctx, ctx.t, { ...job, eventId: id }, event);
    controls.push(landed.outcome);
    return landed.job;
  });
  const resolvedWaits = resolveByEvent(ctx, event);
  return { event, jobs, created: true, ...(resolvedWaits.length > 0 ? { resolvedWaits } : {}), ...(controls.length > 0 ? { controls } : {}) };
}
