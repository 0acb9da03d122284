/**
 * One consumer span per job attempt, `process <queue>`, with the OTel
 * messaging attributes (OPERATIONS.md "Traces"): a child of the producer's
 * stored `traceparent` that also links to it, so the attempt joins the trace
 * of the request that created the job even when it runs hours later. Error
 * status only on the final failure; a retried failure records the exception
 * and leaves the status unset.
 *
 * Spans start on `job:start` and end on the attempt's outcome event, so
 * attempts of remote workers (reported over HTTP) get spans too. The
 * dispatcher runs an in-process handler inside its span's context.
 *
 * Also the source of `trace_id` / `span_id` on job log lines: from the span
 * when tracing is on, else `trace_id` from the stored traceparent (so logs of
 * a job still join the producer's trace id without any tracing cost).
 */
import { context, SpanKind, SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api';
import type { LifecycleSubscriber } from '../core/lifecycle-events.js';
import { contextFromTraceparent, parseTraceparent, type Tracing } from './tracing.js';

interface JobRef {
  id: string;
  queue: string;
  handler: string;
  attempts: number;
  traceparent: string | null;
}

export type TraceFields = { trace_id?: string; span_id?: string };

const NONE: TraceFields = Object.freeze({});

export class AttemptTracer {
  readonly #tracing: Tracing;
  /** Open attempt spans by job id (one attempt of a job runs at a time). */
  readonly #open = new Map<string, { span: Span; ctx: Context; fields: TraceFields }>();

  constructor(tracing: Tracing, lifecycle: LifecycleSubscriber) {
    this.#tracing = tracing;
    if (!tracing.enabled) return;
    lifecycle.on('job:start', ({ job, remote }) => this.#start(job, remote?.workerId));
    lifecycle.on('job:succeeded', ({ job }) => this.#end(job.id, null));
    lifecycle.on('job:failed', ({ job, error, retryAt }) => this.#end(job.id, { error, final: retryAt === null }));
    lifecycle.on('job:released', ({ job, reason }) => this.#end(job.id, null, { 'drover.released': reason }));
    lifecycle.on('job:stale', ({ job, op }) => {
      if (op !== 'heartbeat') this.#end(job.id, null, { 'drover.stale': op });
    });
    lifecycle.on('lease:expired', ({ jobId, state }) => this.#end(jobId, state === 'dead' ? { error: new Error('lease expired; job is dead (poison)'), final: true } : null, { 'drover.lease_expired': true }));
  }

  /** `trace_id` and `span_id` for a job's log lines. */
  fields(job: JobRef): TraceFields {
    const open = this.#open.get(job.id);
    if (open) return open.fields;
    if (job.traceparent === null) return NONE;
    const parent = parseTraceparent(job.traceparent);
    return parent ? { trace_id: parent.traceId } : NONE;
  }

  /**
   * Run `fn(arg)` (the handler) inside the attempt's span, so its own spans
   * nest under it. `arg` spares the caller a closure per job; with tracing
   * off there is no span to look up.
   */
  run<T, A = void>(job: JobRef, fn: (arg: A) => T, arg: A): T {
    if (!this.#tracing.enabled) return fn(arg);
    const open = this.#open.get(job.id);
    return open ? context.with(open.ctx, fn, undefined, arg) : fn(arg);
  }

  /** Attempt spans not yet ended (tests check none leak). */
  get openSpans(): number {
    return this.#open.size;
  }

  #start(job: JobRef, remoteWorker: string | undefined): void {
    this.#end(job.id, null, { 'drover.superseded': true }); // a previous attempt's span that never saw its outcome
    const parent = contextFromTraceparent(job.traceparent);
    const link = trace.getSpanContext(parent);
    const span = this.#tracing.tracer.startSpan(
      `process ${job.queue}`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          'messaging.system': 'drover',
          'messaging.operation.type': 'process',
          'messaging.operation.name': 'process',
          'messaging.destination.name': job.queue,
          'messaging.message.id': job.id,
          'drover.handler': job.handler,
          'drover.attempt': job.attempts,
          ...(remoteWorker ? { 'drover.worker.id': remoteWorker } : {}),
        },
        ...(link ? { links: [{ context: link }] } : {}),
      },
      parent,
    );
    const sc = span.spanContext();
    this.#open.set(job.id, { span, ctx: trace.setSpan(parent, span), fields: { trace_id: sc.traceId, span_id: sc.spanId } });
  }

  #end(jobId: string, failure: { error: Error; final: boolean } | null, attributes?: Record<string, string | boolean>): void {
    const open = this.#open.get(jobId);
    if (!open) return;
    this.#open.delete(jobId);
    const { span } = open;
    if (attributes) span.setAttributes(attributes);
    if (failure) {
      span.recordException(failure.error);
      if (failure.final) span.setStatus({ code: SpanStatusCode.ERROR, message: failure.error.message.slice(0, 200) });
    }
    span.end();
  }
}
