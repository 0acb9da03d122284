/**
 * Durable execution, the domain half: steps whose results are memoized per
 * job, and the waits that suspend a job (sleep, an event, a person's input).
 * Pure data and pure functions; the store keeps the rows
 * (store/roles/durable-store.ts), the runtime gives handlers `ctx.step`.
 *
 * The model is memoization by step name, not replay of a history: a resumed
 * job's handler runs again from the top, a finished step returns its stored
 * result without running, and nothing outside steps has to be deterministic.
 * See docs/durable-execution.md.
 */

/** Why a job is suspended. */
export type SuspendReason = 'sleep' | 'event' | 'interrupt';

/** A finished step as stored: written once, fenced by the lease of the attempt that ran it. */
export interface StepRow {
  jobId: string;
  /** Unique within the job (see `checkStepName`). */
  name: string;
  /** 0, 1, 2, … in the order the handler first reached its steps; a re-run must ask in the same order. */
  seq: number;
  kind: 'run' | SuspendReason;
  /** The job attempt that finished it. */
  attempt: number;
  startedAt: number;
  finishedAt: number;
  /** The step's JSON result (`null` for a sleep, and for a wait that timed out). */
  result: unknown;
  /** Size of `result` as stored JSON, in bytes. */
  resultBytes: number;
  /** A wait that ended at its timeout (its `result` is null). */
  timedOut: boolean;
}

/** The state of a wait: pending until an event or a resume resolves it, or its timeout passes, or its job is cancelled. */
export type WaitState = 'pending' | 'resolved' | 'timed_out' | 'cancelled';

/**
 * A suspended job's wait (one per suspension). An `interrupt` wait is what
 * `/v1/interrupts` lists: its `id` is the interrupt id and `resolved` is
 * shown as `resumed`.
 */
export interface WaitRow {
  /** Random, unguessable (`wt_…`). */
  id: string;
  jobId: string;
  handler: string;
  tenant: string | null;
  step: string;
  seq: number;
  kind: SuspendReason;
  state: WaitState;
  createdAt: number;
  /** When the job wakes by itself: a sleep's end, a wait's timeout; null: no timeout. */
  wakeAt: number | null;
  /** `event` waits: event names (any of them resolves the wait), field matches, and where the look-back starts. */
  events: string[] | null;
  match: WaitMatch | null;
  since: number | null;
  /** `interrupt` waits: what the person is asked, and the JSON Schema the input must satisfy. */
  prompt: string | null;
  schema: unknown;
  resolvedAt: number | null;
  /** Who resolved it: an event id (`event:<id>`), an API key id, or `cli:<user>@<host>`. */
  resolvedBy: string | null;
}

/**
 * Field matches of a wait for an event: dotted paths into the event
 * (`data.orderId`, `tenant`, `name`) and the JSON value each must equal.
 */
export type WaitMatch = Record<string, string | number | boolean | null>;

/** What the runtime asks the store to record when a step suspends the job. */
export interface SuspendRequest {
  step: string;
  seq: number;
  kind: SuspendReason;
  /** When the step began (the wait's look-back starts here for `event`). */
  startedAt: number;
  wakeAt: number | null;
  events?: string[];
  match?: WaitMatch;
  prompt?: string;
  schema?: unknown;
}

/** Limits on what a job may store; defaults in `DURABLE_DEFAULTS`, config `durable`. */
export interface DurableLimits {
  /** Largest result of one step, as JSON bytes. */
  maxStepResultBytes: number;
  /** Most steps one job may record. */
  maxStepsPerJob: number;
  /** Most bytes of step results one job may store in all. */
  maxStateBytesPerJob: number;
}

export const DURABLE_DEFAULTS: DurableLimits = {
  maxStepResultBytes: 1024 * 1024,
  maxStepsPerJob: 1000,
  maxStateBytesPerJob: 32 * 1024 * 1024,
};

const STEP_NAME = /^[A-Za-z0-9._:\-/ ]{1,200}$/;

/**
 * Null when `name` is a valid step name, else what is wrong with it.
 *
 * @example
 * checkStepName('charge-card'); // null
 * checkStepName('item:' + 3); // null (loops: name plus an index)
 * checkStepName(''); // 'step names are 1 to 200 characters: ...'
 */
export function checkStepName(name: unknown): string | null {
  if (typeof name !== 'string' || !STEP_NAME.test(name)) {
    return 'step names are 1 to 200 characters: letters, digits, space and ._:-/ (in a loop, add the index: `item:${i}`)';
  }
  return null;
}

/** The value at a dotted path (`data.order.id`), or undefined. */
export function valueAt(source: unknown, path: string): unknown {
  let current: unknown = source;
  for (const part of path.split('.')) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

/**
 * Whether an event satisfies a wait's field matches (every path equals its value).
 *
 * @example
 * eventMatches({ 'data.orderId': 'o-1' }, { name: 'payment.settled', data: { orderId: 'o-1' }, tenant: null }); // true
 */
export function eventMatches(match: WaitMatch | null, event: { name: string; data: unknown; tenant: string | null }): boolean {
  if (!match) return true;
  for (const [path, expected] of Object.entries(match)) {
    if (valueAt(event, path) !== expected) return false;
  }
  return true;
}

/**
 * Whether an event resolves a pending `event` wait: its name is one the wait
 * listens for, it carries the wait's tenant (a wait of a tenant's job is
 * never woken by another tenant's event; a wait with no tenant takes any),
 * and it satisfies the field matches. The store applies this both in the
 * look-back at suspend and when it accepts an event.
 *
 * @example
 * waitAccepts({ events: ['payment.settled'], match: null, tenant: 't1' }, { name: 'payment.settled', data: {}, tenant: 't2' }); // false
 */
export function waitAccepts(
  wait: Pick<WaitRow, 'events' | 'match' | 'tenant'>,
  event: { name: string; data: unknown; tenant: string | null },
): boolean {
  if (!wait.events?.includes(event.name)) return false;
  if (wait.tenant !== null && event.tenant !== wait.tenant) return false;
  return eventMatches(wait.match, event);
}

/** Stable idempotency key for a step's calls to outside systems: the same for every attempt of the job. */
export function stepKey(jobId: string, step: string): string {
  return `drover:${jobId}:${step}`;
}
