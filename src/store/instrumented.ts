/**
 * Instrument at the seam (STYLE rule 2): one wrapper around any
 * `StorageEngine` times every call into
 * `drover_store_operation_duration_seconds{op,engine}` and, when tracing is on
 * and the call happens inside a traced operation (an API request, an ingest),
 * records it as a child span. Engines hold no metrics code.
 *
 * The wrapper is built from the engine's own methods (its prototype chain), so
 * a method added to the interface is timed without touching this file; the
 * engine's extras stay reachable (`stats`, `poolStats()`: accessors are
 * forwarded, other properties read through the prototype). Each call looks
 * the method up on the engine, so a method replaced on the engine instance
 * (tests make `getEvent` throw that way) is the one timed. A call costs two
 * `performance.now()` reads, one `then` and a few field writes (~0.3 µs).
 */
import { context, SpanKind, SpanStatusCode, trace, type Tracer } from '@opentelemetry/api';
import type { StorageEngine } from './engine.js';

/** A duration histogram (obs/series.ts `HistogramSeries` is one); declared here so store/ does not import obs/, the layer above it. */
export interface DurationSeries {
  observe(seconds: number): void;
}

export interface InstrumentOptions {
  /** The histogram series for an operation (`DroverMetrics.storeTimer`). */
  timer: (op: string) => DurationSeries;
  /** Set when tracing is on; store spans are children of the active span only. */
  tracer?: Tracer | null;
  /** Called with every failed call's error (obs/error-metrics.ts counts store faults by kind). */
  onError?: (op: string, error: unknown) => void;
  /** Called with the result of the named operations only (node deaths from `reclaimDeadNodes`). */
  onResult?: Readonly<Record<string, (result: unknown) => void>>;
}

/** Not store operations: plumbing that must not be timed. */
const PASS_THROUGH = new Set<string>(['constructor', 'onWork', 'poolStats', 'settings', 'tableSizes', 'checkpoint']);

type Method = (...args: unknown[]) => unknown;

/**
 * @example
 * const store = instrumentStore(await openStore(url), { timer: (op) => metrics.storeTimer(op) });
 */
export function instrumentStore<T extends StorageEngine>(engine: T, options: InstrumentOptions): T {
  // Reads that are not wrapped fall through to the engine (its prototype chain stays intact for instanceof).
  const wrapper = Object.create(engine) as T;
  const target = engine as unknown as Record<string, unknown>;
  const engineName = engine.capabilities.engine;
  const tracer = options.tracer ?? null;
  const seen = new Set<string>();

  for (let proto: object | null = engine; proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    for (const [name, descriptor] of Object.entries(Object.getOwnPropertyDescriptors(proto))) {
      if (seen.has(name)) continue;
      seen.add(name);
      if (descriptor.get) {
        // Accessors use private fields: run them with the engine as `this`.
        Object.defineProperty(wrapper, name, { get: () => target[name], enumerable: false, configurable: true });
      } else if (typeof descriptor.value === 'function') {
        const op = name;
        const call: Method = PASS_THROUGH.has(op) ? (...args) => (target[op] as Method).apply(engine, args) : timed(op);
        Object.defineProperty(wrapper, name, { value: tracer && !PASS_THROUGH.has(op) ? traced(op, call) : call, writable: true, configurable: true });
      }
    }
  }
  return wrapper;

  function timed(op: string): Method {
    const series = options.timer(op);
    const onError = options.onError;
    const onResult = options.onResult?.[op];
    return (...args) => {
      const started = performance.now();
      let result: unknown;
      try {
        result = (target[op] as Method).apply(engine, args);
      } catch (error) {
        onError?.(op, error);
        throw error;
      }
      if (isThenable(result)) {
        // Two closures on purpose: one function passed as both handlers measured 3-4× slower (Node 20).
        result.then(
          onResult
            ? (value) => {
                series.observe((performance.now() - started) / 1000);
                onResult(value);
              }
            : () => series.observe((performance.now() - started) / 1000),
          (error: unknown) => {
            series.observe((performance.now() - started) / 1000);
            onError?.(op, error);
          },
        );
      }
      return result;
    };
  }

  function traced(op: string, call: Method): Method {
    const t = tracer!;
    return (...args) => {
      if (!trace.getActiveSpan()) return call(...args);
      const span = t.startSpan(`store ${op}`, {
        kind: SpanKind.CLIENT,
        attributes: { 'db.system.name': engineName === 'postgres' ? 'postgresql' : engineName, 'db.operation.name': op },
      });
      let result: unknown;
      try {
        result = context.with(trace.setSpan(context.active(), span), () => call(...args));
      } catch (error) {
        endWithError(span, error);
        throw error;
      }
      if (!isThenable(result)) {
        span.end();
        return result;
      }
      result.then(
        () => span.end(),
        (error: unknown) => endWithError(span, error),
      );
      return result;
    };
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

function endWithError(span: ReturnType<Tracer['startSpan']>, error: unknown): void {
  span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}
