/**
 * `ctx.step` for remote workers: the same durable steps as the node's own
 * handlers (docs/durable-execution.md), over the lease protocol's step calls
 * (docs/remote-workers.md, "Durable steps").
 *
 * Which stored step answers which call is decided by the node's own logic
 * (`core/step-plan.ts`): memoized by name and order, a changed sequence
 * refused loudly. The job's stored steps are read on the first step call
 * only, so a job that uses no steps costs no extra request. A step that
 * suspends the job (sleep, a wait) ends the attempt: the handler is unwound
 * with `StepSuspended`, and the worker reports neither complete nor fail.
 */
import { stepKey, type StepRow, type SuspendReason, type WaitMatch } from '../core/durable.js';
import { NonRetryableError } from '../core/errors.js';
import type { StepApi, WaitedEvent } from '../core/handler.js';
import { StepPlan } from '../core/step-plan.js';
import { DroverApiError } from './errors.js';

/** A stored step as the step calls answer it (times as ISO strings). */
interface StepJson {
  name: string;
  seq: number;
  kind: StepRow['kind'];
  attempt: number;
  startedAt: string;
  finishedAt: string;
  result: unknown;
  resultBytes: number;
  timedOut: boolean;
}

/**
 * Thrown inside a handler when a step suspended the job: the job now waits on
 * the node, holding nothing, and this attempt is over. Let it propagate (a
 * handler that catches it anyway changes nothing: its outcome is dropped).
 */
export class StepSuspendedError extends Error {
  constructor(jobId: string, step: string, kind: SuspendReason) {
    super(`job ${jobId} is suspended at step "${step}" (${kind}); it runs again when the wait ends`);
    this.name = 'StepSuspendedError';
  }
}

/** What the step context needs from the worker running the job. */
export interface StepTransport {
  jobId: string;
  token: string;
  /** POST a lease-protocol call with the job's fence added. */
  post<T>(path: string, body: Record<string, unknown>, options?: { idempotent?: boolean }): Promise<T>;
  /** The node's clock, as well as the worker can tell it (from the lease answer); never ahead of the node. */
  nodeNow(): number;
  /** The lease is gone (409, 403 key mismatch): abort the job; the error to throw into the handler. */
  leaseLost(error: Error): Error;
  /** A step suspended the job. */
  suspended(): void;
}

/**
 * The limits are the node's to enforce (it answers 422): locally the plan
 * only checks names and order, and that results are JSON.
 */
const UNLIMITED = { maxStepResultBytes: Infinity, maxStepsPerJob: Infinity, maxStateBytesPerJob: Infinity };

const fromJson = (jobId: string, step: StepJson): StepRow => ({
  ...step,
  jobId,
  startedAt: Date.parse(step.startedAt),
  finishedAt: Date.parse(step.finishedAt),
});

/** Problem types that mean the request can never succeed as sent: the job fails without a retry. */
const FINAL = new Set(['step-result-too-large', 'too-many-steps', 'job-state-too-large', 'validation']);

/**
 * The `ctx.step` of one remote attempt.
 * @example
 * const step = remoteSteps({ jobId, token, post, nodeNow, leaseLost, suspended });
 * const order = await step.run('load-order', () => orders.get(id));
 */
export function remoteSteps(transport: StepTransport): StepApi {
  const { jobId } = transport;
  let loading: Promise<StepPlan> | null = null;
  let suspendedAt: { step: string; kind: SuspendReason } | null = null;

  /** The plan, loaded on the first step call; later calls wait for the same load, in call order. */
  const plan = (): Promise<StepPlan> => {
    loading ??= call<{ steps: StepJson[] }>('/v1/workers/steps', {}, true).then(({ steps }) => new StepPlan(steps.map((s) => fromJson(jobId, s)), UNLIMITED));
    return loading;
  };

  async function call<T>(path: string, body: Record<string, unknown>, idempotent = false): Promise<T> {
    try {
      return await transport.post<T>(path, body, { idempotent });
    } catch (error) {
      if (!(error instanceof DroverApiError)) throw error;
      const gone = (error.status === 409 && error.code !== 'duplicate-step') || error.status === 404 || error.code === 'lease-key-mismatch' || error.code === 'handler-not-allowed';
      // A step started alongside the one that suspended the job finds the lease gone: that is the suspension, not a loss.
      if (gone && suspendedAt) throw new StepSuspendedError(jobId, suspendedAt.step, suspendedAt.kind);
      if (gone) throw transport.leaseLost(error);
      if (FINAL.has(error.code)) throw new NonRetryableError(error.detail, { cause: error });
      throw error;
    }
  }

  /** The next step call: memoized, to run as `seq`, or refused. */
  async function begin(name: string, kind: StepRow['kind']): Promise<{ memoized: StepRow } | { seq: number; plan: StepPlan }> {
    if (suspendedAt) throw new StepSuspendedError(jobId, suspendedAt.step, suspendedAt.kind);
    const current = await plan();
    const answer = current.next(name, kind);
    if (answer.do === 'fail') throw answer.error;
    if (answer.do === 'memoized') return { memoized: answer.step };
    return { seq: answer.seq, plan: current };
  }

  /** Suspend on a wait; the step's result when the node resolved it at once (an event already there, a sleep already over). */
  async function suspend(name: string, kind: SuspendReason, wait: Record<string, unknown>): Promise<unknown> {
    const next = await begin(name, kind);
    if ('memoized' in next) return next.memoized.result;
    const startedAt = transport.nodeNow();
    const answer = await call<{ suspended: true } | { suspended: false; step: StepJson }>('/v1/workers/suspend', { step: name, seq: next.seq, kind, startedAt, ...wait });
    if (!answer.suspended) {
      const step = fromJson(jobId, answer.step);
      next.plan.recorded(step);
      return step.result;
    }
    suspendedAt = { step: name, kind };
    transport.suspended();
    throw new StepSuspendedError(jobId, name, kind);
  }

  return {
    async run<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
      const next = await begin(name, 'run');
      if ('memoized' in next) return next.memoized.result as T;
      const startedAt = transport.nodeNow();
      const measured = next.plan.measure(name, await fn());
      const { step } = await call<{ step: StepJson }>('/v1/workers/step', { name, seq: next.seq, kind: 'run', startedAt, result: measured.value });
      next.plan.recorded(fromJson(jobId, step));
      return measured.value as T;
    },

    async sleep(name: string, duration: number | { until: number | Date }): Promise<void> {
      const wakeAt = typeof duration === 'number' ? null : +duration.until;
      if (typeof duration === 'number' && (!Number.isFinite(duration) || duration < 0)) throw new TypeError(`step.sleep("${name}"): expected a duration in ms ≥ 0`);
      if (wakeAt !== null && !Number.isFinite(wakeAt)) throw new TypeError(`step.sleep("${name}"): until is not a valid time`);
      await suspend(name, 'sleep', wakeAt === null ? { timeoutMs: Math.ceil(duration as number) } : { wakeAt });
    },

    async waitForEvent<D = unknown>(name: string, options: { event: string | string[]; match?: WaitMatch; timeoutMs?: number }): Promise<WaitedEvent<D> | null> {
      const events = Array.isArray(options.event) ? options.event : [options.event];
      const wait = { events, ...(options.match ? { match: options.match } : {}), ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }) };
      return (await suspend(name, 'event', wait)) as WaitedEvent<D> | null;
    },

    async interrupt<I = unknown>(name: string, options: { prompt: string; schema?: object; timeoutMs?: number }): Promise<I | null> {
      const wait = { prompt: options.prompt, ...(options.schema ? { schema: options.schema } : {}), ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }) };
      return (await suspend(name, 'interrupt', wait)) as I | null;
    },

    key(name: string): string {
      return stepKey(jobId, name);
    },
  };
}
