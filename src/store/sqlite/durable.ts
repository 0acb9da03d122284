/**
 * Durable execution's transitions on SQLite, each run inside one group-commit
 * write op (so each is one transaction, and SQLite's single writer orders a
 * suspend and an ingest of the same event name: one of them always sees the
 * other's rows — the never-miss rule of `roles/durable-store.ts`).
 *
 * Queue depth (`maxDepth`) counts scheduled, queued and running jobs, not
 * suspended ones: a job waiting days for a person must not block intake. A
 * suspend takes the job out of the count and a wake-up puts it back (without
 * a room check: a woken job is never refused).
 */
import { waitAccepts, type StepRow, type SuspendRequest, type WaitRow } from '../../core/durable.js';
import type { EventRow, JobRow } from '../../core/types.js';
import {
  eventAsResult,
  eventResolver,
  jsonBytes,
  mapStepRow,
  mapWaitRow,
  newWaitId,
  stepLimitRefusal,
  TIMER_RESOLVER,
} from '../durable-rows.js';
import type { RecordStepRequest, RecordStepResult, ResolvedWait, ResumeResult, SuspendResult } from '../roles/durable-store.js';
import { addDepth, type WriteEffects } from './queue-depth.js';
import type { DurableFixed, FencedJob, RawStep, RawWait } from './durable-statements.js';
import { parseJobId, toEventRow, toJobRow, toJson } from './rows.js';
import type { FixedStatements } from './statements.js';

export interface DurableContext {
  s: FixedStatements;
  d: DurableFixed;
  now: number;
  own: WriteEffects;
}

const fromJson = (text: string | null): unknown => (text === null ? null : (JSON.parse(text) as unknown));

export const toStepRow = (raw: RawStep): StepRow => mapStepRow(raw, fromJson);
export const toWaitRow = (raw: RawWait): WaitRow => mapWaitRow(raw, fromJson);

/** The running job under this lease, or why not. */
function fence(ctx: DurableContext, jobId: string, token: string): FencedJob | { ok: false; reason: 'stale_lease' | 'not_found' } {
  const id = parseJobId(jobId);
  if (id === null) return { ok: false, reason: 'not_found' };
  const job = ctx.d.fencedJob.get({ id, token });
  if (job) return job;
  return { ok: false, reason: ctx.s.jobExists.get(id) ? 'stale_lease' : 'not_found' };
}

interface StepWrite {
  name: string;
  seq: number;
  kind: StepRow['kind'];
  attempt: number;
  startedAt: number;
  result: unknown;
  timedOut?: boolean;
}

/** Insert a step; null when one with this name or seq is already stored. */
function insertStep(ctx: DurableContext, jobId: number, step: StepWrite, json = toJson(step.result)): StepRow | null {
  const raw = ctx.d.insertStep.get({
    job_id: jobId,
    name: step.name,
    seq: step.seq,
    kind: step.kind,
    attempt: step.attempt,
    started_at: step.startedAt,
    finished_at: ctx.now,
    result: json,
    result_bytes: jsonBytes(json),
    timed_out: step.timedOut ? 1 : 0,
  });
  return raw ? toStepRow(raw) : null;
}

export function recordStep(ctx: DurableContext, jobId: string, token: string, request: RecordStepRequest): RecordStepResult {
  const job = fence(ctx, jobId, token);
  if ('ok' in job) return job;
  if (ctx.d.stepByName.get(job.id, request.name)) return { ok: false, reason: 'duplicate' };
  const json = toJson(request.result);
  const totals = ctx.d.stepTotals.get(job.id)!;
  const refusal = stepLimitRefusal(jsonBytes(json), totals.n, totals.bytes, request.limits);
  if (refusal) return { ok: false, reason: 'limit', ...refusal };
  const step = insertStep(ctx, job.id, { ...request, attempt: job.lease_seq }, json);
  return step ? { ok: true, step } : { ok: false, reason: 'duplicate' };
}

/**
 * The earliest event accepted since the step began that the wait accepts,
 * skipping events that already resolved another step of this job. Reads
 * each name's events oldest first and stops at the first match, so a long
 * look-back over a busy name costs only what it reads.
 */
function lookBack(ctx: DurableContext, jobId: number, wait: Pick<WaitRow, 'events' | 'match' | 'tenant'>, since: number): EventRow | null {
  const used = new Set(ctx.d.eventStepResults.all(jobId).map((r) => (fromJson(r.result) as { id?: string } | null)?.id ?? ''));
  let found: EventRow | null = null;
  for (const name of wait.events ?? []) {
    for (const raw of ctx.d.eventsSince.iterate(name, since)) {
      if (found && (raw.received_at > found.receivedAt || (raw.received_at === found.receivedAt && raw.id > found.id))) break;
      const event = toEventRow(raw);
      if (!waitAccepts(wait, event) || used.has(event.id)) continue;
      found = event;
      break;
    }
  }
  return found;
}

export function suspend(ctx: DurableContext, jobId: string, token: string, request: SuspendRequest): SuspendResult {
  const job = fence(ctx, jobId, token);
  if ('ok' in job) return job;
  const { d, now } = ctx;
  // Already stored (a retried call): the step's result stands, nothing suspends.
  const stored = d.stepByName.get(job.id, request.step);
  if (stored) return { ok: true, suspended: false, step: toStepRow(stored) };

  const step = { name: request.step, seq: request.seq, kind: request.kind, attempt: job.lease_seq, startedAt: request.startedAt };
  const tenant = job.event_id === null ? null : (ctx.s.eventById.get(job.event_id)?.tenant ?? null);
  const events = request.kind === 'event' ? [...new Set(request.events ?? [])].sort() : null;
  const match = request.kind === 'event' ? (request.match ?? null) : null;

  if (events) {
    const event = lookBack(ctx, job.id, { events, match, tenant }, request.startedAt);
    if (event) return stored_(insertStep(ctx, job.id, { ...step, result: eventAsResult(event) }));
  }
  if (request.wakeAt !== null && request.wakeAt <= now) {
    // The sleep is over, or the wait's timeout passed before it was recorded.
    return stored_(insertStep(ctx, job.id, { ...step, result: null, timedOut: request.kind !== 'sleep' }));
  }

  const raw = d.suspendJob.get({ id: job.id, token, wakeAt: request.wakeAt, now })!;
  // The attempt's one row (migration 0009): from the fenced read, as suspendJob clears worker_id.
  ctx.s.insertAttempt.run(job.id, job.lease_seq, job.worker_id ?? '', job.leased_at ?? now, now, 'suspended', null);
  addDepth(ctx.own, job.queue, -1);
  const wait = d.insertWait.get({
    id: newWaitId(now),
    job_id: job.id,
    handler: job.handler,
    tenant,
    step: request.step,
    seq: request.seq,
    kind: request.kind,
    created_at: now,
    started_at: request.startedAt,
    wake_at: request.wakeAt,
    events: events ? JSON.stringify(events) : null,
    match: match ? JSON.stringify(match) : null,
    prompt: request.kind === 'interrupt' ? (request.prompt ?? null) : null,
    schema: request.kind === 'interrupt' && request.schema !== undefined ? toJson(request.schema) : null,
  })!;
  for (const name of events ?? []) d.insertWaitEvent.run(name, wait.id);
  return { ok: true, suspended: true, wait: toWaitRow(wait), job: toJobRow(raw) };
}

function stored_(step: StepRow | null): SuspendResult {
  // insertStep found no conflict a moment ago in the same transaction.
  return { ok: true, suspended: false, step: step! };
}

/**
 * Settle a pending wait (compare-and-set), store its step and queue its job,
 * or null when the wait was not pending any more.
 */
function settle(
  ctx: DurableContext,
  waitId: string,
  outcome: { state: 'resolved' | 'timed_out'; by: string | null; result: unknown },
): { wait: WaitRow; job: JobRow } | null {
  const { d, now } = ctx;
  const raw = d.settleWait.get({ id: waitId, state: outcome.state, now, by: outcome.by });
  if (!raw) return null;
  d.deleteWaitEvents.run(waitId);
  const job = d.wakeJob.get({ id: Number(raw.job_id), now });
  if (job) {
    insertStep(ctx, job.id, {
      name: raw.step,
      seq: raw.seq,
      kind: raw.kind,
      attempt: job.lease_seq,
      startedAt: raw.started_at,
      result: outcome.result,
      timedOut: outcome.state === 'timed_out',
    });
    addDepth(ctx.own, job.queue, 1);
    ctx.own.woken.add(job.queue, job.handler);
  }
  return { wait: toWaitRow(raw), job: job ? toJobRow(job) : toJobRow(ctx.s.jobById.get(Number(raw.job_id))!) };
}

/** In the transaction that accepted `event`: resolve the pending waits it satisfies. */
export function resolveByEvent(ctx: DurableContext, event: EventRow): ResolvedWait[] {
  const candidates = ctx.d.waitsForEvent.all(event.name);
  if (candidates.length === 0) return [];
  const resolved: ResolvedWait[] = [];
  for (const raw of candidates) {
    if (!waitAccepts(toWaitRow(raw), event)) continue;
    const done = settle(ctx, raw.id, { state: 'resolved', by: eventResolver(event.id), result: eventAsResult(event) });
    if (done) resolved.push({ ...done, event });
  }
  return resolved;
}

/** Wake suspended jobs whose sleep ended or whose wait timed out, at most `limit`. */
export function wakeDue(ctx: DurableContext, limit: number): WaitRow[] {
  const woken: WaitRow[] = [];
  for (const raw of ctx.d.dueWaits.all(ctx.now, limit)) {
    const sleep = raw.kind === 'sleep';
    const done = settle(ctx, raw.id, { state: sleep ? 'resolved' : 'timed_out', by: sleep ? TIMER_RESOLVER : null, result: null });
    if (done) woken.push(done.wait);
  }
  return woken;
}

export function resumeWait(ctx: DurableContext, waitId: string, input: unknown, resolvedBy: string): ResumeResult {
  const raw = ctx.d.waitById.get(waitId);
  if (!raw || raw.kind !== 'interrupt') return { ok: false, reason: 'not_found' };
  const done = settle(ctx, waitId, { state: 'resolved', by: resolvedBy, result: input });
  if (!done) return { ok: false, reason: 'conflict', wait: toWaitRow(raw) };
  return { ok: true, ...done };
}

/** A suspended job was cancelled: its pending wait is cancelled too (never resolved later). */
export function cancelWaits(ctx: DurableContext, jobId: number): void {
  const raw = ctx.d.pendingWaitOfJob.get(jobId);
  if (!raw) return;
  ctx.d.settleWait.get({ id: raw.id, state: 'cancelled', now: ctx.now, by: null });
  ctx.d.deleteWaitEvents.run(raw.id);
}
