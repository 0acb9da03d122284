/**
 * OpenTelemetry tracing. Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set: then no provider is
 * registered, `enabled` is false, and every caller skips its span work
 * entirely — the job path pays one boolean check. On, spans go through a
 * batch processor to the OTLP/HTTP exporter, which reads the standard
 * `OTEL_EXPORTER_OTLP_*` variables itself (endpoint, headers, timeout);
 * `OTEL_SERVICE_NAME` names the service (default `drover`) and
 * `OTEL_TRACES_SAMPLER` picks the sampler (default parent-based always-on).
 *
 * The producer's W3C `traceparent` is stored with each job; the attempt span
 * is its child and links to it (see attempt-tracing.ts).
 */
import { context, isSpanContextValid, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, propagation, type Context, type ProxyTracerProvider, type SpanContext, type Tracer } from '@opentelemetry/api';
import type { SpanExporter } from '@opentelemetry/sdk-trace-node';
import { lazy } from '../core/lazy.js';
import { VERSION } from '../version.js';
import type { SdkTracing } from './tracing-sdk.js';

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
/**
 * The OpenTelemetry SDK (provider, exporter, propagator), imported only when
 * tracing is on: with tracing off, the usual case, it is ~150 modules and
 * several MiB a node never uses (issue 24, worker RSS).
 */
const tracingSdk = lazy(() => import('./tracing-sdk.js'));

export interface TracingOptions {
  exporter: SpanExporter;
  /** Export each span as it ends (tests) instead of in batches. */
  simple?: boolean;
  serviceName?: string;
  /** `service.instance.id`: the node id. */
  instanceId?: string;
}

/** Why spans did not reach the collector: an export failed, or shutdown gave up waiting for one. */
export type SpanExportFailure = { kind: 'failed'; spans: number; error: Error } | { kind: 'abandoned' };

export class Tracing {
  readonly enabled: boolean;
  readonly tracer: Tracer;
  readonly #sdk: SdkTracing | null;
  #registered = false;

  private constructor(sdk: SdkTracing | null) {
    this.#sdk = sdk;
    const provider = sdk?.provider ?? null;
    this.enabled = provider !== null;
    this.tracer = provider ? provider.getTracer('drover', VERSION) : trace.getTracer('drover', VERSION);
    if (provider) {
      // Register globally so context propagates through async calls and handler
      // code using @opentelemetry/api joins the attempt's trace. A second node in
      // the same process (tests) finds the globals taken; its own tracer still
      // works, and it shares the first node's context manager.
      provider.register();
      this.#registered = (trace.getTracerProvider() as ProxyTracerProvider).getDelegate() === provider;
    }
  }

  /** Tracing off: no provider, no spans, no cost. */
  static disabled(): Tracing {
    return new Tracing(null);
  }

  /**
   * On when the environment names an OTLP endpoint (`OTEL_SDK_DISABLED=true`
   * or `OTEL_TRACES_EXPORTER=none` turn it off again).
   *
   * @example
   * const tracing = await Tracing.fromEnv(process.env, { instanceId: nodeId });
   */
  static async fromEnv(env: Readonly<Record<string, string | undefined>>, options: { instanceId?: string } = {}): Promise<Tracing> {
    const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT;
    if (!endpoint || env.OTEL_SDK_DISABLED === 'true' || env.OTEL_TRACES_EXPORTER === 'none') return Tracing.disabled();
    const sdk = await tracingSdk();
    return Tracing.withExporter({
      exporter: sdk.otlpExporter(),
      ...(env.OTEL_SERVICE_NAME ? { serviceName: env.OTEL_SERVICE_NAME } : {}),
      ...options,
    });
  }

  /**
   * Tracing with a given exporter (tests use an `InMemorySpanExporter`).
   *
   * @example
   * const exporter = new InMemorySpanExporter();
   * const tracing = await Tracing.withExporter({ exporter, simple: true });
   */
  static async withExporter(options: TracingOptions): Promise<Tracing> {
    return new Tracing((await tracingSdk()).sdkTracing(options));
  }

  /** Called for each failed span export, and when shutdown gives up on the last one. */
  onExportFailure(listener: (failure: SpanExportFailure) => void): void {
    if (this.#sdk) this.#sdk.reporter.listener = listener;
  }

  /**
   * The parent for work accepted now: the active span (an API request's) when
   * there is one, else the caller's `traceparent`, else none.
   */
  parentContext(traceparent: string | null): Context {
    const active = context.active();
    if (trace.getSpan(active)) return active;
    return contextFromTraceparent(traceparent);
  }

  /**
   * Run `fn` inside a producer span for accepted work (an ingest or enqueue)
   * and hand it the `traceparent` to store with the jobs. Off: `fn` gets the
   * caller's traceparent unchanged, so traces still join across services,
   * and `fn`'s own promise is returned (no async wrapper around it: every
   * enqueue request goes through here).
   */
  produce<T>(destination: () => string, count: number, traceparent: string | null, fn: (traceparent: string | null) => Promise<T>): Promise<T> {
    if (!this.enabled) {
      try {
        return fn(traceparent);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return this.#produce(destination(), count, traceparent, fn);
  }

  async #produce<T>(name: string, count: number, traceparent: string | null, fn: (traceparent: string | null) => Promise<T>): Promise<T> {
    const span = this.tracer.startSpan(
      `send ${name}`,
      {
        kind: SpanKind.PRODUCER,
        attributes: {
          'messaging.system': 'drover',
          'messaging.operation.type': 'send',
          'messaging.operation.name': 'send',
          'messaging.destination.name': name,
          ...(count > 1 ? { 'messaging.batch.message_count': count } : {}),
        },
      },
      this.parentContext(traceparent),
    );
    try {
      return await context.with(trace.setSpan(context.active(), span), () => fn(formatTraceparent(span.spanContext())));
    } catch (error) {
      span.recordException(error instanceof Error ? error : String(error));
      span.setStatus({ code: SpanStatusCode.ERROR });
      throw error;
    } finally {
      span.end();
    }
  }

  /** Extract W3C trace context from request headers (without relying on a global propagator). */
  extract(headers: Record<string, string | string[] | undefined>): Context {
    if (!this.#sdk) return ROOT_CONTEXT;
    return this.#sdk.propagator.extract(ROOT_CONTEXT, headers, {
      get: (carrier, key) => carrier[key],
      keys: (carrier) => Object.keys(carrier),
    });
  }

  async forceFlush(): Promise<void> {
    await this.#sdk?.provider.forceFlush();
  }

  /**
   * Export what is buffered, stop the provider and give the globals back.
   * Waits at most `timeoutMs` for the last export: the OTLP exporter retries
   * an unreachable collector with backoff for about 8 s, which a shutdown
   * must not sit out (the spans are reported as abandoned instead).
   */
  async shutdown(timeoutMs = 2_000): Promise<void> {
    if (!this.#sdk) return;
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
      timer.unref();
    });
    const outcome = await Promise.race([this.#sdk.provider.shutdown().then(() => 'done' as const), gaveUp]);
    clearTimeout(timer);
    if (outcome === 'timeout') this.#sdk.reporter.listener?.({ kind: 'abandoned' });
    if (this.#registered) {
      trace.disable();
      context.disable();
      propagation.disable();
      this.#registered = false;
    }
  }
}

/** A parent context from a W3C traceparent (remote), or ROOT_CONTEXT when absent or malformed. */
export function contextFromTraceparent(traceparent: string | null | undefined): Context {
  const parent = parseTraceparent(traceparent);
  return parent ? trace.setSpanContext(ROOT_CONTEXT, parent) : ROOT_CONTEXT;
}

/**
 * @example
 * parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')?.traceId; // '4bf92f3577b34da6a3ce929d0e0e4736'
 */
export function parseTraceparent(traceparent: string | null | undefined): SpanContext | null {
  if (!traceparent) return null;
  const match = TRACEPARENT.exec(traceparent);
  if (!match || match[1] === 'ff') return null;
  const sc: SpanContext = { traceId: match[2]!, spanId: match[3]!, traceFlags: parseInt(match[4]!, 16) & 1, isRemote: true };
  return isSpanContextValid(sc) ? sc : null;
}

export function formatTraceparent(sc: SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 1) === 1 ? '01' : '00'}`;
}

/** The producer span's destination for an ingest: the event name when the batch has one, else `events`. */
export function eventDestination(inputs: ReadonlyArray<{ name: string }>): string {
  const first = inputs[0]?.name;
  return first !== undefined && inputs.every((e) => e.name === first) ? first : 'events';
}

/** The producer span's destination for an enqueue: the queue when the batch has one, else `jobs`. */
export function jobDestination(requests: ReadonlyArray<{ handler: string; queue?: string }>, handlers: ReadonlyMap<string, { queue: string }>): string {
  const queueOf = (r: { handler: string; queue?: string }) => r.queue ?? handlers.get(r.handler)?.queue ?? 'default';
  const first = requests[0];
  if (!first) return 'jobs';
  const queue = queueOf(first);
  return requests.every((r) => queueOf(r) === queue) ? queue : 'jobs';
}
