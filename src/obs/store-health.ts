/**
 * Is the store answering? One ping at a time, every `everyMs`; pings that
 * fail, or do not answer within `timeoutMs`, for `graceMs` on end (two checks
 * at least: one slow ping under load is not an outage) make the store
 * unreachable until a ping answers again. Readiness reports it (503 naming the reason),
 * and the API refuses store-bound requests at once with 503 `store-unavailable`
 * and `Retry-After` rather than letting each one wait out its own deadline
 * on a path that went silent. Both engines; no configuration needed.
 *
 * Pings never pile up: while one is outstanding no other starts, so a
 * black-holed path costs one connection per deadline, not one per second.
 */
import { Gauge } from 'prom-client';
import { DroverError, toError } from '../core/errors.js';
import type { StorageEngine } from '../store/engine.js';
import type { Logger } from './logger.js';
import type { DroverMetrics } from './metrics.js';

export interface StoreHealthOptions {
  store: Pick<StorageEngine, 'ping'>;
  logger: Logger;
  clock?: () => number;
  /** How often to ping. Default 1 s. */
  everyMs?: number;
  /** A ping slower than this counts as a failure. Default 2 s. */
  timeoutMs?: number;
  /** Failing for this long without an answer in between makes the store unreachable. Default `everyMs`. */
  graceMs?: number;
}

/** Seconds a refused client is told to wait before retrying. */
const RETRY_AFTER_S = 2;

/**
 * @example
 * const health = new StoreHealth({ store, logger });
 * health.start();
 * if (!health.reachable) throw health.unavailable();
 */
export class StoreHealth {
  readonly #options: Required<Omit<StoreHealthOptions, 'store' | 'logger'>> & Pick<StoreHealthOptions, 'store' | 'logger'>;
  #timer: NodeJS.Timeout | null = null;
  /** When the outstanding ping started, or null. */
  #pingSince: number | null = null;
  /** Since when pings have failed without an answer in between; null after an answer. */
  #failingSince: number | null = null;
  /** When the store stopped answering, and why; null while it answers. */
  #down: { since: number; detail: string } | null = null;
  readonly #onDown = new Set<() => void>();

  constructor(options: StoreHealthOptions) {
    const everyMs = options.everyMs ?? 1_000;
    this.#options = { clock: Date.now, timeoutMs: 2_000, graceMs: everyMs, ...options, everyMs };
  }

  get reachable(): boolean {
    return this.#down === null;
  }

  /** Why the store counts as unreachable (for readiness and logs); null while reachable. */
  get reason(): string | null {
    if (!this.#down) return null;
    const seconds = ((this.#options.clock() - this.#down.since) / 1000).toFixed(1);
    return `store unreachable for ${seconds} s: ${this.#down.detail}`;
  }

  /** The error a store-bound request gets while the store is unreachable. */
  unavailable(): DroverError {
    return new DroverError('store_unavailable', `${this.reason ?? 'store unreachable'}; nothing was stored, retry later`, {
      retryAfterSeconds: RETRY_AFTER_S,
    });
  }

  /**
   * Call `listener` once when the store turns unreachable (requests already
   * waiting on it are answered then, not at their own deadline). Returns the
   * unsubscribe function.
   */
  onUnreachable(listener: () => void): () => void {
    this.#onDown.add(listener);
    return () => void this.#onDown.delete(listener);
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.#tick(), this.#options.everyMs);
    this.#timer.unref();
    this.#tick();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  #tick(): void {
    const { clock, timeoutMs } = this.#options;
    const now = clock();
    if (this.#pingSince !== null) {
      if (now - this.#pingSince >= timeoutMs) this.#failed(`no answer to a ping within ${timeoutMs} ms`);
      return;
    }
    this.#pingSince = now;
    let ping: Promise<void>;
    try {
      ping = this.#options.store.ping();
    } catch (error) {
      ping = Promise.reject(error);
    }
    ping.then(
      () => {
        this.#pingSince = null;
        // An answer slower than the deadline still proves the path works again.
        this.answered();
      },
      (error: unknown) => {
        this.#pingSince = null;
        this.#failed(toError(error).message);
      },
    );
  }

  #failed(detail: string): void {
    if (this.#down) {
      this.#down.detail = detail;
      return;
    }
    const now = this.#options.clock();
    this.#failingSince ??= now;
    if (now - this.#failingSince < this.#options.graceMs) return;
    this.#down = { since: this.#failingSince, detail };
    const listeners = [...this.#onDown];
    this.#onDown.clear();
    for (const listener of listeners) {
      try {
        listener();
      } catch {
        // One request's failure to answer must not keep the others waiting.
      }
    }
    this.#options.logger.error(
      { err: new Error(detail) },
      'store unreachable: readiness is 503 and store-bound requests are refused with 503 until it answers again; check the database and the network path to it',
    );
  }

  /** The store answered (this ping, or another caller's, e.g. readiness): the outage, if any, is over. */
  answered(): void {
    this.#failingSince = null;
    if (!this.#down) return;
    const downMs = this.#options.clock() - this.#down.since;
    this.#down = null;
    this.#options.logger.warn({ down_ms: downMs }, 'store reachable again: readiness and intake resume');
  }
}

/** `drover_store_up`: 1 while the store answers its pings, 0 while it does not. */
export function observeStoreHealth(metrics: DroverMetrics, health: StoreHealth): void {
  new Gauge({
    name: 'drover_store_up',
    help: 'Whether the store answers its health pings (1) or not (0); 0 means readiness is 503 and intake is refused.',
    labelNames: ['engine'],
    registers: [metrics.registry],
    collect() {
      this.set({ engine: metrics.engine }, health.reachable ? 1 : 0);
    },
  });
}
