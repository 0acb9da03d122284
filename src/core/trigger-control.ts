/**
 * Debounce, throttle and batch on triggers (docs/configuration.md
 * "Debounce, throttle and batch"): what a trigger may declare, the key an
 * event is grouped by, and the pure decisions the stores carry out in the
 * ingest transaction. No I/O: the engines read the open job of a key, call
 * `planMerge`, and write what it says.
 *
 * - debounce: one open `scheduled` job per (trigger, key); each event
 *   replaces its payload and pushes its run back by `windowMs`, never past
 *   the first event + `maxWaitMs`.
 * - batch: one open job per (trigger, key) whose payload is the list of the
 *   events (`{ events: [{ id, data, tenant, receivedAt }] }`); it runs when it
 *   holds `maxSize` events or `maxWaitMs` after the first.
 * - throttle: every event gets its own job, due at the key's next free slot
 *   (GCRA with no burst: slots `periodMs / limit` apart), so nothing is dropped.
 */
import { createHash } from 'node:crypto';
import { lookupPath } from './filter.js';
import type { EventRow } from './types.js';

/** Largest batch a trigger may collect. */
export const MAX_BATCH_SIZE = 1000;
/** Longest window, period or wait, in ms (what a timer can hold: about 24.8 days). */
export const MAX_CONTROL_MS = 2_147_483_647;
/** Key values longer than this are stored as their SHA-256 (index entries stay small). */
const MAX_KEY_VALUE = 200;

export type TriggerControl =
  | { kind: 'debounce'; key: string | null; windowMs: number; maxWaitMs: number | null }
  | { kind: 'throttle'; key: string | null; limit: number; periodMs: number }
  | { kind: 'batch'; key: string | null; maxSize: number; maxWaitMs: number };

export type ControlKind = TriggerControl['kind'];
export type MergeKind = Exclude<ControlKind, 'throttle'>;

/** What a job from a controlled trigger carries to the store: the control and the group it belongs to. */
export interface JobControl {
  control: TriggerControl;
  /** The (trigger, key) group: `kind:handler#trigger:keyValue`. Never shown in metrics. */
  groupKey: string;
  /** A batch closes before its payload would exceed this many bytes (limits.maxPayloadBytes). */
  maxPayloadBytes: number;
}

const KEY_RE = /^(tenant|data(\.[A-Za-z0-9_-]+){1,8})$/;
const KEY_EXPECTED = 'expected "tenant" or "data.<path>" (e.g. "data.customerId")';

/**
 * Validate a trigger's `debounce` / `throttle` / `batch` (at most one) and
 * resolve it; problems are reported through `issue(path, message)`.
 *
 * @example
 * checkTriggerControl({ event: 'x', batch: { maxSize: 50, maxWaitMs: 2000 } }, 'handlers[0].on', report);
 * // { kind: 'batch', key: null, maxSize: 50, maxWaitMs: 2000 }
 */
export function checkTriggerControl(spec: Record<string, unknown>, at: string, issue: (path: string, message: string) => void): TriggerControl | null {
  const given = (['debounce', 'throttle', 'batch'] as const).filter((kind) => spec[kind] !== undefined);
  if (given.length === 0) return null;
  if (given.length > 1) {
    issue(at, `a trigger takes one of debounce, throttle, batch; got ${given.join(' and ')}`);
    return null;
  }
  const kind = given[0]!;
  const path = `${at}.${kind}`;
  const value = spec[kind];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    issue(path, `expected an object (${TRIGGER_CONTROL_KEYS[kind].join(', ')})`);
    return null;
  }
  const o = value as Record<string, unknown>;
  let ok = true;
  for (const name of Object.keys(o)) {
    if (!TRIGGER_CONTROL_KEYS[kind].includes(name)) {
      issue(`${path}.${name}`, `unknown key; allowed keys: ${TRIGGER_CONTROL_KEYS[kind].join(', ')}`);
      ok = false;
    }
  }
  const int = (name: string, min: number, max: number, optional = false): number | null => {
    const v = o[name];
    if (v === undefined && optional) return null;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      issue(`${path}.${name}`, `expected an integer from ${min} to ${max}, ${v === undefined ? 'but it is missing' : `got ${JSON.stringify(v)}`}`);
      ok = false;
      return null;
    }
    return v;
  };
  let key: string | null = null;
  if (o.key !== undefined) {
    if (typeof o.key !== 'string' || !KEY_RE.test(o.key)) {
      issue(`${path}.key`, KEY_EXPECTED);
      ok = false;
    } else key = o.key;
  }
  let control: TriggerControl | null = null;
  if (kind === 'debounce') {
    const windowMs = int('windowMs', 1, MAX_CONTROL_MS);
    const maxWaitMs = int('maxWaitMs', 1, MAX_CONTROL_MS, true);
    if (windowMs !== null && maxWaitMs !== null && maxWaitMs < windowMs) {
      issue(`${path}.maxWaitMs`, `expected at least windowMs (${windowMs}), got ${maxWaitMs}`);
      ok = false;
    }
    if (windowMs !== null) control = { kind, key, windowMs, maxWaitMs };
  } else if (kind === 'throttle') {
    const limit = int('limit', 1, 100_000);
    const periodMs = int('periodMs', 1, MAX_CONTROL_MS);
    if (limit !== null && periodMs !== null) control = { kind, key, limit, periodMs };
  } else {
    const maxSize = int('maxSize', 1, MAX_BATCH_SIZE);
    const maxWaitMs = int('maxWaitMs', 1, MAX_CONTROL_MS);
    if (maxSize !== null && maxWaitMs !== null) control = { kind, key, maxSize, maxWaitMs };
  }
  return ok ? control : null;
}

/** Each control's keys (docs/configuration.md "Debounce, throttle and batch"). */
export const TRIGGER_CONTROL_KEYS: Readonly<Record<ControlKind, readonly string[]>> = {
  debounce: ['key', 'windowMs', 'maxWaitMs'],
  throttle: ['key', 'limit', 'periodMs'],
  batch: ['key', 'maxSize', 'maxWaitMs'],
};

/**
 * The group an event falls into: trigger (handler + its position in `on`)
 * and key value. Events without the key's value share the group of the
 * empty value, so they are still controlled, together.
 *
 * @example
 * groupKeyFor('digest', 0, { kind: 'batch', key: 'tenant', maxSize: 10, maxWaitMs: 1000 }, {}, 'acme'); // 'batch:digest#0:acme'
 */
export function groupKeyFor(handler: string, trigger: number, control: TriggerControl, data: unknown, tenant: string | null): string {
  let value = '';
  if (control.key === 'tenant') value = tenant ?? '';
  else if (control.key !== null) {
    const found = lookupPath(data, control.key.split('.').slice(1));
    if (found.present && found.value !== null) value = typeof found.value === 'string' ? found.value : JSON.stringify(found.value);
  }
  if (value.length > MAX_KEY_VALUE) value = `sha256:${createHash('sha256').update(value).digest('hex')}`;
  return `${control.kind}:${handler}#${trigger}:${value}`;
}

/** The open job of a group, as the store read it (payload as its stored JSON text). */
export interface OpenMerge {
  payloadText: string;
  runAt: number;
  /** The latest run_at allowed (first event + maxWaitMs); null: no bound. */
  until: number | null;
  count: number;
}


/**
 * What to write for one event of a debounce or batch trigger.
 * `update`: merge into the open job (its payload, run_at, count; `due`: it
 * is full and runs now). `open`: start a new job; `closeOpen` first queues
 * the open one now (its window ended before the store staged it, or the
 * batch would outgrow the payload limit).
 */
export type MergePlan =
  | { op: 'update'; payloadText: string; runAt: number; count: number; due: boolean }
  | { op: 'open'; payloadText: string; runAt: number; until: number | null; due: boolean; closeOpen: boolean };

/**
 * Decide how an event joins its group at `now`: debounce keeps the job's
 * payload (`jobPayload`), batch lists the event.
 *
 * @example
 * planMerge(debounce, null, event, event.data, 1000, 1_048_576); // { op: 'open', runAt: 1000 + windowMs, ... }
 */
export function planMerge(control: TriggerControl, open: OpenMerge | null, event: EventRow, jobPayload: unknown, now: number, maxPayloadBytes: number): MergePlan {
  if (control.kind === 'throttle') throw new Error('planMerge: throttle does not merge');
  const dataText = JSON.stringify(event.data ?? null);
  // Debounce keeps the job's own payload (a handler's is the event data; a runtime trigger's names the trigger).
  const input = { dataText: JSON.stringify(jobPayload ?? null), entryText: batchEntryText({ id: event.id, dataText, tenant: event.tenant, receivedAt: event.receivedAt }) };
  const stillOpen = open !== null && open.runAt > now;
  if (control.kind === 'debounce') {
    if (stillOpen) {
      const pushed = now + control.windowMs;
      return { op: 'update', payloadText: input.dataText, runAt: open.until === null ? pushed : Math.min(pushed, open.until), count: open.count + 1, due: false };
    }
    const until = control.maxWaitMs === null ? null : now + control.maxWaitMs;
    return { op: 'open', payloadText: input.dataText, runAt: now + control.windowMs, until, due: false, closeOpen: open !== null };
  }
  if (stillOpen) {
    const payloadText = appendBatchEntry(open.payloadText, input.entryText);
    if (Buffer.byteLength(payloadText) <= maxPayloadBytes) {
      const count = open.count + 1;
      const due = count >= control.maxSize;
      return { op: 'update', payloadText, runAt: due ? now : open.runAt, count, due };
    }
  }
  // A single event's batch may pass the limit by the wrapper's few bytes: the event itself was within it.
  const single = control.maxSize <= 1;
  return { op: 'open', payloadText: batchPayloadText([input.entryText]), runAt: single ? now : now + control.maxWaitMs, until: now + control.maxWaitMs, due: single, closeOpen: open !== null };
}

/** One event as a batch job's payload lists it: `{"id":"e1","data":{"n":1},"tenant":null,"receivedAt":"1970-01-01T00:00:00.000Z"}`. */
function batchEntryText(event: { id: string; dataText: string; tenant: string | null; receivedAt: number }): string {
  return `{"id":${JSON.stringify(event.id)},"data":${event.dataText},"tenant":${JSON.stringify(event.tenant)},"receivedAt":${JSON.stringify(new Date(event.receivedAt).toISOString())}}`;
}

function batchPayloadText(entries: readonly string[]): string {
  return `{"events":[${entries.join(',')}]}`;
}

/** Appends by text: the stored payload is exactly what `batchPayloadText` wrote (PostgreSQL `json` keeps text as is). */
function appendBatchEntry(payloadText: string, entryText: string): string {
  if (!payloadText.endsWith(']}')) throw new Error('batch payload is not the shape this runtime writes');
  return `${payloadText.slice(0, -2)},${entryText}]}`;
}

/**
 * Throttle's spacing between job starts of one group, in ms: `limit` per
 * `periodMs`, evenly, so no window of `periodMs` holds more than `limit`.
 *
 * @example
 * throttleIntervalMs({ kind: 'throttle', key: null, limit: 4, periodMs: 1000 }); // 250
 */
export function throttleIntervalMs(control: Extract<TriggerControl, { kind: 'throttle' }>): number {
  return Math.ceil(control.periodMs / control.limit);
}
