/**
 * Durable execution's rows as both engines store them (`steps`, `waits`), the
 * mapping to the domain rows of `core/durable.ts`, and the rules both engines
 * apply the same way: wait ids, step limits, an event as a step's result.
 */
import { randomBytes } from 'node:crypto';
import type { DurableLimits, StepRow, SuspendReason, WaitMatch, WaitRow, WaitState } from '../core/durable.js';
import type { EventRow } from '../core/types.js';

/** A `steps` row; `J` is how a JSON column arrives from the driver. */
export interface StepColumns<J> {
  job_id: number | string;
  name: string;
  seq: number;
  kind: StepRow['kind'];
  attempt: number;
  started_at: number;
  finished_at: number;
  result: J;
  result_bytes: number;
  timed_out: number | boolean;
}

/** A `waits` row; `J` is how a JSON column arrives from the driver. */
export interface WaitColumns<J> {
  id: string;
  job_id: number | string;
  handler: string;
  tenant: string | null;
  step: string;
  seq: number;
  kind: SuspendReason;
  state: WaitState;
  created_at: number;
  started_at: number;
  wake_at: number | null;
  events: J | null;
  match: J | null;
  prompt: string | null;
  schema: J | null;
  resolved_at: number | null;
  resolved_by: string | null;
}

export function mapStepRow<J>(raw: StepColumns<J>, decode: (value: J) => unknown): StepRow {
  return {
    jobId: String(raw.job_id),
    name: raw.name,
    seq: Number(raw.seq),
    kind: raw.kind,
    attempt: Number(raw.attempt),
    startedAt: Number(raw.started_at),
    finishedAt: Number(raw.finished_at),
    result: decode(raw.result),
    resultBytes: Number(raw.result_bytes),
    timedOut: raw.timed_out === true || raw.timed_out === 1,
  };
}

export function mapWaitRow<J>(raw: WaitColumns<J>, decode: (value: J | null) => unknown): WaitRow {
  return {
    id: raw.id,
    jobId: String(raw.job_id),
    handler: raw.handler,
    tenant: raw.tenant,
    step: raw.step,
    seq: Number(raw.seq),
    kind: raw.kind,
    state: raw.state,
    createdAt: Number(raw.created_at),
    wakeAt: raw.wake_at === null ? null : Number(raw.wake_at),
    events: (decode(raw.events) as string[] | null) ?? null,
    match: (decode(raw.match) as WaitMatch | null) ?? null,
    // The look-back start is meaningful for event waits only.
    since: raw.kind === 'event' ? Number(raw.started_at) : null,
    prompt: raw.prompt,
    schema: decode(raw.schema) ?? null,
    resolvedAt: raw.resolved_at === null ? null : Number(raw.resolved_at),
    resolvedBy: raw.resolved_by,
  };
}

/**
 * A new wait id: `wt_`, the creation time (12 hex digits, so ids sort by
 * creation and keyset pages read newest first) and 128 random bits (so an id
 * cannot be guessed from another).
 */
export function newWaitId(now: number): string {
  return `wt_${Math.max(0, Math.floor(now)).toString(16).padStart(12, '0')}${randomBytes(16).toString('hex')}`;
}

/** Size of a step result as stored JSON, in bytes. */
export function jsonBytes(json: string): number {
  return Buffer.byteLength(json, 'utf8');
}

export type StepLimitRefusal = {
  limit: 'step_result_too_large' | 'too_many_steps' | 'job_state_too_large';
  message: string;
};

/**
 * Null when a new step of `bytes` fits the job's limits, given the `count`
 * steps and `total` bytes it already stores; else which limit and why.
 */
export function stepLimitRefusal(bytes: number, count: number, total: number, allowed: DurableLimits): StepLimitRefusal | null {
  if (bytes > allowed.maxStepResultBytes) {
    return {
      limit: 'step_result_too_large',
      message: `the step's result is ${bytes} bytes as JSON, over the limit of ${allowed.maxStepResultBytes} (durable.maxStepResultBytes); store large data elsewhere and return a reference`,
    };
  }
  if (count + 1 > allowed.maxStepsPerJob) {
    return {
      limit: 'too_many_steps',
      message: `the job already stores ${count} steps, the limit (durable.maxStepsPerJob); split the work into several jobs`,
    };
  }
  if (total + bytes > allowed.maxStateBytesPerJob) {
    return {
      limit: 'job_state_too_large',
      message: `the job's steps would store ${total + bytes} bytes, over the limit of ${allowed.maxStateBytesPerJob} (durable.maxStateBytesPerJob); return smaller results or references`,
    };
  }
  return null;
}

/** What a wait resolved by an event returns to the handler: the event itself. */
export function eventAsResult(event: EventRow): { id: string; name: string; data: unknown; tenant: string | null; receivedAt: number } {
  return { id: event.id, name: event.name, data: event.data, tenant: event.tenant, receivedAt: event.receivedAt };
}

/** Who resolved a wait that an event resolved. */
export function eventResolver(eventId: string): string {
  return `event:${eventId}`;
}

/** Who resolved a sleep that ended (the store's timer). */
export const TIMER_RESOLVER = 'timer';
