/**
 * `ctx.step` for a handler the node runs: one StepContext per attempt, made
 * the first time the handler touches `ctx.step` (a job that never does costs
 * no store read). It lives on the main thread, which holds the store and the
 * lease; an `isolation: 'thread'` handler reaches it through messages
 * (thread-pool.ts), the step's own function still running in the thread.
 *
 * Which stored step answers a call is core/step-plan.ts. This file does the
 * writes, fenced by the attempt's lease: a step's result is stored before
 * the handler goes on; a sleep or wait suspends the job in the store and
 * then unwinds the handler with `StepSuspended`. Whatever the handler does
 * with that error (catches it, returns, throws something else), the attempt
 * ends `suspended` (`outcome`): the store already says so.
 */
import type { DurableLimits, StepRow, SuspendReason, SuspendRequest, WaitMatch, WaitRow } from '../core/durable.js';
import { DroverError, NonRetryableError, toError } from '../core/errors.js';
import type { StepApi, WaitedEvent } from '../core/handler.js';
import { stepKey } from '../core/durable.js';
import { notJsonError, StepPlan } from '../core/step-plan.js';
import type { LeasedJob } from '../core/types.js';
import type { DurableStore } from '../store/roles/durable-store.js';
import { InterruptInputValidator } from './interrupt-input.js';
import type { ThreadStepCall, ThreadStepReply } from './handler-thread.js';
import type { RunOutcome } from './job-runner.js';
import type { Lifecycle } from './lifecycle.js';

/** Thrown inside the handler once the job is suspended: the attempt ends here, and resumes from the top when the wait ends. */
export class StepSuspended extends Error {
  constructor(step: string, reason: SuspendReason) {
    super(`the job is suspended at step "${step}" (${reason}); this attempt ends here and the handler runs again from the top when it wakes (do not catch this error)`);
    this.name = 'StepSuspended';
  }
}

/** Thrown inside the handler when a step write found the lease gone: another holder owns the job, this attempt writes nothing more. */
export class StepLeaseLost extends Error {
  constructor(step: string) {
    super(`the job's lease was lost (it expired or the job was cancelled) while storing step "${step}"; this attempt stops and writes nothing more`);
    this.name = 'StepLeaseLost';
  }
}

/** What the node gives every step context. */
export interface StepDeps {
  store: DurableStore;
  lifecycle: Lifecycle;
  limits: DurableLimits;
  clock: () => number;
  /** A suspended job wakes by itself at `at` (a sleep's end, a wait's timeout): the due timer must fire by then. */
  onWakeAt: (at: number) => void;
}

/** A `ctx.step` call that is not memoized: run it as `seq`, begun at `startedAt`. */
export interface StepStart {
  seq: number;
  startedAt: number;
}

/** The options of a suspending step as the handler passed them (checked here, so a thread posts them unchanged). */
export type WaitOptions =
  | { kind: 'sleep'; duration: number | { until: number | Date } }
  | { kind: 'event'; event: string | string[]; match?: WaitMatch; timeoutMs?: number }
  | { kind: 'interrupt'; prompt: string; schema?: object; timeoutMs?: number };

export class StepContext {
  readonly #deps: StepDeps;
  readonly #job: LeasedJob;
  readonly #onLost: (error: Error) => void;
  #plan: Promise<StepPlan> | null = null;
  #suspended: WaitRow | null = null;
  #lost: 'step' | 'suspend' | null = null;
  /** The attempt's outcome is taken (`outcome`): a step its handler still runs (not awaited, or past a timeout) writes nothing. */
  #ended = false;
  #api: StepApi | null = null;

  /** `onLost`: the lease is gone (abort the handler's signal). */
  constructor(deps: StepDeps, job: LeasedJob, onLost: (error: Error) => void) {
    this.#deps = deps;
    this.#job = job;
    this.#onLost = onLost;
  }

  /** The attempt's outcome, corrected by what its steps did: a suspended job ends `suspended`, a lost lease `stale`. */
  outcome(result: RunOutcome): RunOutcome {
    this.#ended = true;
    if (this.#suspended) return { kind: 'suspended', wait: this.#suspended };
    if (this.#lost) return { kind: 'stale', op: this.#lost };
    return result;
  }

  /** `ctx.step` for an inline handler. */
  get api(): StepApi {
    return (this.#api ??= {
      run: async <T>(name: string, fn: () => T | Promise<T>): Promise<T> => {
        const begun = await this.begin(name, 'run');
        if ('memoized' in begun) return begun.memoized as T;
        let value: T;
        try {
          value = await fn();
        } catch (error) {
          this.failed(name, 'run', begun.startedAt);
          throw error;
        }
        return (await this.record(name, begun, value)) as T;
      },
      sleep: async (name, duration) => {
        await this.wait(name, { kind: 'sleep', duration });
      },
      waitForEvent: <D>(name: string, options: { event: string | string[]; match?: WaitMatch; timeoutMs?: number }) =>
        this.wait(name, { kind: 'event', ...options }) as Promise<WaitedEvent<D> | null>,
      interrupt: <I>(name: string, options: { prompt: string; schema?: object; timeoutMs?: number }) =>
        this.wait(name, { kind: 'interrupt', ...options }) as Promise<I | null>,
      key: (name) => stepKey(this.#job.id, name),
    });
  }

  /** Answer a step call: its stored result (`memoized`), or where to run it; throws when the plan refuses it. */
  async begin(name: string, kind: StepRow['kind']): Promise<{ memoized: unknown } | StepStart> {
    this.#assertLive(name);
    const plan = await this.#loadPlan();
    this.#assertLive(name);
    const answer = plan.next(name, kind);
    if (answer.do === 'fail') {
      if (answer.sequenceChanged) this.#deps.lifecycle.emit('step:sequence_changed', { job: this.#job, ...answer.sequenceChanged });
      throw answer.error;
    }
    if (answer.do === 'memoized') {
      this.#deps.lifecycle.emit('step:finished', { job: this.#job, step: answer.step, outcome: 'memoized', durationMs: 0 });
      return { memoized: answer.step.result };
    }
    return { seq: answer.seq, startedAt: this.#deps.clock() };
  }

  /** Store a `run` step's result (fenced) and return it as every later run will see it (its JSON read back). */
  async record(name: string, start: StepStart, value: unknown): Promise<unknown> {
    this.#assertLive(name);
    const plan = await this.#loadPlan();
    let measured;
    try {
      measured = plan.measure(name, value);
    } catch (error) {
      this.failed(name, 'run', start.startedAt);
      throw error;
    }
    const written = await this.#deps.store.recordStep(this.#job.id, this.#job.leaseToken, {
      name,
      seq: start.seq,
      kind: 'run',
      startedAt: start.startedAt,
      result: measured.value,
      limits: this.#deps.limits,
    });
    if (written.ok) {
      plan.recorded(written.step);
      this.#finished(written.step, start.startedAt);
      return measured.value;
    }
    this.failed(name, 'run', start.startedAt);
    if (written.reason === 'limit') throw new NonRetryableError(written.message);
    if (written.reason === 'duplicate') {
      // Only another holder of this job can have written it: this attempt's view is out of date; the next one memoizes it.
      throw new Error(`step "${name}" was stored meanwhile by another attempt of this job; this attempt fails and the next one returns the stored result`);
    }
    throw this.#leaseLost(name, 'step');
  }

  /** Answer a step call of a handler thread (handler-thread.ts): the answer to post back, or null for a call that takes none. */
  async answer(call: ThreadStepCall): Promise<ThreadStepReply | null> {
    try {
      const value = await this.#serve(call);
      return call.op === 'failed' ? null : { ok: true, value };
    } catch (caught) {
      const error = toError(caught);
      return { ok: false, error: { name: error.name, message: error.message } };
    }
  }

  #serve(call: ThreadStepCall): Promise<unknown> {
    switch (call.op) {
      case 'begin':
        return this.begin(call.name, 'run');
      case 'record':
        if (call.notJson !== undefined) {
          this.failed(call.name, 'run', call.start.startedAt);
          return Promise.reject(notJsonError(call.name, call.notJson));
        }
        return this.record(call.name, call.start, call.json === undefined ? null : JSON.parse(call.json));
      case 'failed':
        this.failed(call.name, 'run', call.startedAt);
        return Promise.resolve(undefined);
      case 'wait':
        return this.wait(call.name, call.options);
    }
  }

  /** A step's function threw: the attempt fails through the handler's retry policy. */
  failed(name: string, kind: StepRow['kind'], startedAt: number): void {
    this.#deps.lifecycle.emit('step:finished', { job: this.#job, step: { name, kind }, outcome: 'failed', durationMs: this.#deps.clock() - startedAt });
  }

  /**
   * A sleep or wait: its stored result when it already ended; else suspend
   * the job in the store and throw `StepSuspended`. The store may answer
   * without suspending (the sleep is over, the event was already there): then
   * its result is returned at once.
   */
  async wait(name: string, options: WaitOptions): Promise<unknown> {
    const begun = await this.begin(name, options.kind);
    if ('memoized' in begun) return options.kind === 'sleep' ? undefined : begun.memoized;
    const since = options.kind === 'event' ? (await this.#loadPlan()).lookBackFrom(begun.seq, this.#job.createdAt) : begun.startedAt;
    const request = suspendRequest(name, begun, options, since);
    const answer = await this.#deps.store.suspend(this.#job.id, this.#job.leaseToken, request);
    if (!answer.ok) throw this.#leaseLost(name, 'suspend');
    if (!answer.suspended) {
      (await this.#loadPlan()).recorded(answer.step);
      this.#finished(answer.step, begun.startedAt);
      return options.kind === 'sleep' ? undefined : answer.step.result;
    }
    this.#suspended = answer.wait;
    if (answer.wait.wakeAt !== null) this.#deps.onWakeAt(answer.wait.wakeAt);
    throw new StepSuspended(name, options.kind);
  }

  #finished(step: StepRow, startedAt: number): void {
    this.#deps.lifecycle.emit('step:finished', { job: this.#job, step, outcome: 'succeeded', durationMs: this.#deps.clock() - startedAt });
  }

  /** After a suspension or a lost lease nothing more is written: every later step call unwinds the handler again. */
  #assertLive(name: string): void {
    if (this.#suspended) throw new StepSuspended(this.#suspended.step, this.#suspended.kind);
    if (this.#lost) throw new StepLeaseLost(name);
    if (this.#ended) throw new Error(`step "${name}" was asked for after its attempt ended (a step not awaited, or one still running at the timeout); nothing is stored`);
  }

  #leaseLost(name: string, op: 'step' | 'suspend'): Error {
    // A step started alongside the one that suspended the job finds the lease gone: that is the suspension, not a loss.
    if (this.#suspended) return new StepSuspended(this.#suspended.step, this.#suspended.kind);
    const error = new StepLeaseLost(name);
    if (!this.#lost && !this.#ended) {
      this.#lost = op;
      this.#deps.lifecycle.emit('job:stale', { job: this.#job, op });
      this.#onLost(error);
    }
    return error;
  }

  #loadPlan(): Promise<StepPlan> {
    return (this.#plan ??= this.#deps.store.getSteps(this.#job.id).then((steps) => new StepPlan(steps, this.#deps.limits)));
  }
}

/**
 * The store's request for a suspending step, from the handler's options; a
 * NonRetryableError names what is wrong with them. `since`: where an event
 * wait's look-back starts (`StepPlan.lookBackFrom`); the store takes it as the
 * step's start.
 */
export function suspendRequest(name: string, start: StepStart, options: WaitOptions, since = start.startedAt): SuspendRequest {
  const base = { step: name, seq: start.seq, startedAt: options.kind === 'event' ? since : start.startedAt };
  const bad = (what: string) => new NonRetryableError(`step "${name}": ${what}`);
  if (options.kind === 'sleep') {
    const { duration } = options;
    let wakeAt: number;
    if (typeof duration === 'number') {
      if (!Number.isFinite(duration) || duration < 0) throw bad(`sleep expects a duration in ms (0 or more) or { until }, got ${String(duration)}`);
      wakeAt = start.startedAt + duration;
    } else {
      const until = duration?.until instanceof Date ? duration.until.getTime() : duration?.until;
      if (typeof until !== 'number' || !Number.isFinite(until)) throw bad('sleep expects { until } as epoch milliseconds or a Date');
      wakeAt = until;
    }
    return { ...base, kind: 'sleep', wakeAt: Math.ceil(wakeAt) };
  }
  const wakeAt = timeoutAt(options.timeoutMs, start.startedAt, bad);
  if (options.kind === 'event') {
    const events = Array.isArray(options.event) ? options.event : [options.event];
    if (events.length === 0 || events.some((e) => typeof e !== 'string' || e.length === 0)) throw bad('waitForEvent expects `event`: an event name or a non-empty list of them');
    const match = options.match;
    if (match !== undefined) {
      const scalar = (v: unknown) => v === null || ['string', 'number', 'boolean'].includes(typeof v);
      if (match === null || typeof match !== 'object' || Array.isArray(match) || !Object.values(match).every(scalar)) {
        throw bad('waitForEvent expects `match` as { "data.path": value } with string, number, boolean or null values');
      }
    }
    return { ...base, kind: 'event', wakeAt, events, ...(match ? { match } : {}) };
  }
  if (typeof options.prompt !== 'string' || options.prompt.length === 0) throw bad('interrupt expects a `prompt` (the question a person answers)');
  if (options.schema !== undefined && (options.schema === null || typeof options.schema !== 'object')) throw bad('interrupt expects `schema` as a JSON Schema object');
  if (options.schema) assertSchemaCompiles(options.schema, bad);
  return { ...base, kind: 'interrupt', wakeAt, prompt: options.prompt, ...(options.schema ? { schema: options.schema } : {}) };
}

/** Compiles interrupt schemas once each, so a broken one fails its job now, not a person's resume later (a 500). */
const interruptSchemas = new InterruptInputValidator();

function assertSchemaCompiles(schema: object, bad: (what: string) => Error): void {
  try {
    // Any input will do: only whether the schema compiles is asked here.
    interruptSchemas.check(schema, null, 'being suspended');
  } catch (error) {
    if (error instanceof DroverError && error.code === 'config_invalid') {
      throw bad(`interrupt's \`schema\` is not a valid JSON Schema (${(error.cause as Error | undefined)?.message ?? error.message})`);
    }
  }
}

function timeoutAt(timeoutMs: number | undefined, startedAt: number, bad: (what: string) => Error): number | null {
  if (timeoutMs === undefined) return null;
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 0) throw bad(`timeoutMs expects ms (0 or more), got ${String(timeoutMs)}`);
  return startedAt + Math.ceil(timeoutMs);
}
