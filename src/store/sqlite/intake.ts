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
import type { JobInserts } from './job-inserts.js';
import { addDepth, type QueueDepths, type WriteEffects } from './queue-depth.js';
import { newEventRow, newJobRow, storedNumber, storedText, toEventRow, toJobRow, toJson } from './rows.js';
import type { FixedStatements, NewEventValues, NewJobValues } from './statements.js';
import { eventMerges, ingestControlled, type TriggerStatements } from './trigger-groups.js';

/** What an intake op needs: statements, the depth counters, and the op's and batch's effects. */
export interface IntakeContext {
  s: FixedStatements;
  /** Several plain jobs a statement (`insertJobs`). */
  inserts: JobInserts;
  d: DurableFixed;
  t: TriggerStatements;
  depths: QueueDepths;
  now: number;
  options: EnqueueOptions | undefined;
  own: WriteEffects;
  batch: Readonly<WriteEffects>;
}

export function insertJob(ctx: IntakeContext, job: NewJob): EnqueueResult {
  const { s } = ctx;
  const key = job.idempotencyKey ?? null;
  if (key !== null) {
    const existing = s.jobByIdempotencyKey.get(job.handler, key);
    if (existing) return { job: toJobRow(existing), created: false };
  }
  const values = admit(ctx, job, fairTag(ctx, job));
  // No RETURNING (statements.ts): the row is built from what was inserted.
  const id = Number(s.insertJob.run(...values).lastInsertRowid);
  return { job: newJobRow(id, values, JSON.parse(values[3])), created: true };
}

/**
 * The jobs of one enqueue, answered in order. Jobs with neither an
 * idempotency key nor a fair queue need no read before their insert, so each
 * run of them is inserted several rows a statement (job-inserts.ts); a job
 * with either is inserted alone, after the run before it, so ids still
 * follow the jobs' order and its reads see every job before it.
 */
export function insertJobs(ctx: IntakeContext, jobs: readonly NewJob[]): EnqueueResult[] {
  const results: EnqueueResult[] = [];
  let run: NewJobValues[] = [];
  const flush = () => {
    if (run.length === 0) return;
    const ids = ctx.inserts.insert(run);
    for (let i = 0; i < run.length; i++) results.push({ job: newJobRow(ids[i]!, run[i]!, JSON.parse(run[i]![3])), created: true });
    run = [];
  };
  for (const job of jobs) {
    if (job.idempotencyKey != null || fairQueue(ctx, job)) {
      flush();
      results.push(insertJob(ctx, job));
    } else {
      run.push(admit(ctx, job, 0));
    }
  }
  flush();
  return results;
}

/**
 * A new job's insert values, once its queue has room: counted in the op's
 * depth, and its handler woken after COMMIT when it is due. A later refusal
 * in the same op throws the op away whole (its savepoint), counts included.
 */
function admit(ctx: IntakeContext, job: NewJob, tag: number): NewJobValues {
  const { now, own } = ctx;
  ctx.depths.checkRoom(job.queue, ctx.options, ctx.batch, own);
  const state = job.runAt <= now ? 'queued' : 'scheduled';
  const echo = ctx.s.echo;
  const values: NewJobValues = [
    storedText(job.handler, echo),
    storedText(job.queue, echo),
    state,
    toJson(job.payload),
    storedText(job.eventId ?? null, echo),
    storedNumber(job.priority),
    storedNumber(job.runAt),
    storedNumber(job.maxAttempts),
    storedText(job.idempotencyKey ?? null, echo),
    storedText(job.concurrencyKey ?? null, echo),
    storedNumber(job.concurrencyLimit ?? null),
    storedText(job.traceparent ?? null, echo),
    storedText(job.tenant ?? null, echo),
    job.priorityMs ?? STRICT_PRIORITY_MS,
    tag,
    storedNumber(now),
    storedNumber(now),
  ];
  addDepth(own, job.queue, 1);
  if (state === 'queued') own.woken.add(job.queue, job.handler);
  return values;
}

function fairQueue(ctx: IntakeContext, job: NewJob): boolean {
  return ctx.options?.queueLimits?.get(job.queue)?.fairness === 'tenant';
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
  if (!fairQueue(ctx, job)) return 0;
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
