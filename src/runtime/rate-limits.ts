/**
 * Dispatch rate limits per handler (`rateLimit: {limit, periodMs, key?}`),
 * enforced by this node's dispatcher. A handler without a key caps what is
 * leased (`room`); with a key (`tenant` or `payload.<path>`) each leased job
 * is checked as it starts (`admit`) and one over its key's limit is handed
 * back unspent, scheduled for when its key has room again.
 *
 * On a store shared by several nodes (PostgreSQL) the store keeps the window
 * (`takeRateStart`), so the limit holds cluster-wide; each node also keeps its
 * own starts in memory, a subset of the shared window: when they alone fill
 * it the answer is "no" without asking, and they size what is leased. On a
 * single-node store (SQLite) the memory window is the whole truth.
 */
import { lookupPath } from '../core/filter.js';
import type { ResolvedHandler } from '../core/config.js';
import { rateCurrent, rateNextAt, rateRoom, rateTake, type RateWindow } from '../core/rate-window.js';

type RateLimitPolicy = NonNullable<ResolvedHandler['rateLimit']>;
import type { LeasedJob } from '../core/types.js';
import type { StorageEngine } from '../store/engine.js';
import { sharedRateLimitsOf, type SharedRateLimits } from '../store/roles/shared-rate-limits.js';

/** The key a job is limited under: `tenant` or `payload.<path>` (null: the handler-wide window). */
export function rateKeyFor(handler: ResolvedHandler, job: Pick<LeasedJob, 'payload' | 'event'>): string | null {
  const key = handler.rateLimit?.key ?? null;
  if (key === null) return null;
  if (key === 'tenant') return job.event?.tenant ?? '';
  const { present, value } = lookupPath(job.payload, key.split('.').slice(1));
  if (!present || value === null || value === undefined) return '';
  return typeof value === 'string' ? value : JSON.stringify(value) ?? '';
}

export class RateLimits {
  /** handler → key ('' for none) → window. */
  readonly #windows = new Map<string, Map<string, RateWindow>>();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  /** The store's shared windows, when it declares `sharedRateLimits`. */
  readonly #shared: SharedRateLimits | null;

  constructor(
    private readonly clock: () => number,
    private readonly wake: () => void,
    store?: Pick<StorageEngine, 'capabilities' | 'takeRateStart'>,
  ) {
    this.#shared = store ? sharedRateLimitsOf(store) : null;
  }

  /** Jobs of a key-less limited handler that may still start now; undefined when it has no such limit. */
  room(handler: ResolvedHandler): number | undefined {
    const policy = handler.rateLimit;
    if (!policy || policy.key !== null) return undefined;
    const now = this.clock();
    const window = this.#window(handler.name, '', policy.periodMs);
    const room = rateRoom(window, policy, now);
    if (room === 0) this.#wakeAt(handler.name, rateNextAt(window, policy, now));
    return room;
  }

  /**
   * null: start now (counted); a time: hold the job until then. A promise of
   * either when the store keeps the window: the store decides.
   */
  admit(job: LeasedJob, handler: ResolvedHandler): number | null | Promise<number | null> {
    const policy = handler.rateLimit;
    if (!policy) return null;
    const key = rateKeyFor(handler, job) ?? '';
    const now = this.clock();
    const local = this.#window(handler.name, key, policy.periodMs);
    const shared = this.#shared;
    if (!shared || rateRoom(local, policy, now) === 0) return this.#take(handler.name, key, policy, now);
    // JSON: any key (a payload value) becomes text PostgreSQL can store, and no two pairs collide.
    return shared.takeRateStart(JSON.stringify([handler.name, key]), policy, now).then((taken) => {
      // Counted here too only once the store counted it.
      if (taken.ok) return this.#take(handler.name, key, policy, now, true);
      if (policy.key === null) this.#wakeAt(handler.name, taken.retryAt);
      return taken.retryAt;
    });
  }

  /** Take a start from this node's window (`force`: the store already allowed it). */
  #take(handler: string, key: string, policy: RateLimitPolicy, now: number, force = false): number | null {
    const window = this.#window(handler, key, policy.periodMs);
    const taken = force ? { ok: true as const, window: [...rateCurrent(window, policy, now), now] } : rateTake(window, policy, now);
    this.#windows.get(handler)!.set(key, taken.window);
    if (taken.ok) return null;
    if (policy.key === null) this.#wakeAt(handler, taken.retryAt);
    return taken.retryAt;
  }

  stop(): void {
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }

  #window(handler: string, key: string, periodMs: number): RateWindow {
    let byKey = this.#windows.get(handler);
    if (!byKey) this.#windows.set(handler, (byKey = new Map()));
    // Keep the map small: drop windows with nothing left in them now and then.
    if (byKey.size > 1000) {
      const now = this.clock();
      for (const [k, w] of byKey) if (rateCurrent(w, { limit: 1, periodMs }, now).length === 0) byKey.delete(k);
    }
    return byKey.get(key) ?? [];
  }

  #wakeAt(handler: string, at: number): void {
    if (this.#timers.has(handler)) return;
    const timer = setTimeout(() => {
      this.#timers.delete(handler);
      this.wake();
    }, Math.max(0, at - this.clock()) + 1);
    timer.unref();
    this.#timers.set(handler, timer);
  }
}
