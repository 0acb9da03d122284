/**
 * Per target (`host:port` an action connects to): a circuit breaker
 * (`webhooks.breaker`, stored in `webhook_breaker:<target>`, merged across
 * nodes like handler breakers) and a hold (`action_hold:<target>`: a time
 * before which nothing goes to the target, set when it answers "retry after",
 * merged by taking the later time). While either keeps a target closed, its
 * deliveries are handed back unspent until the time it names.
 *
 * @example
 * targets.hold('api.telegram.org:443', now + 3_000); // a 429 with retry_after: 3
 * targets.admit('api.telegram.org:443');             // now + 3000: hand the job back until then
 */
import { breakerAdmission, breakerAt, breakerResult, breakerRetryAt, breakerStarted, closedBreaker, mergeBreaker, type BreakerPolicy, type BreakerState, type BreakerStateName } from '../../core/breaker.js';
import { toError } from '../../core/errors.js';
import type { MetaStore } from '../../store/engine.js';

const breakerKey = (target: string) => `webhook_breaker:${target}`;
const holdKey = (target: string) => `action_hold:${target}`;

export interface TargetView {
  state: BreakerStateName;
  consecutiveFailures: number;
  openedAt: string | null;
  probeAt: string | null;
  /** Set while the target asked to wait (a 429 with `retry_after`). */
  holdUntil?: string;
}

export class TargetStates {
  readonly #breakers = new Map<string, BreakerState>();
  readonly #holds = new Map<string, number>();
  readonly #writes = new Map<string, Promise<void>>();

  constructor(
    private readonly options: {
      store: Pick<MetaStore, 'getMeta' | 'updateMeta'>;
      policy: BreakerPolicy;
      clock: () => number;
      /** A probe older than this was lost with its node. */
      probeStaleMs: number;
      onError: (task: string, error: Error) => void;
    },
  ) {}

  /** Read the stored state of these targets, merged into what this node knows. */
  async load(targets: Iterable<string>): Promise<void> {
    for (const target of new Set(targets)) {
      const stored = parseBreaker(await this.options.store.getMeta(breakerKey(target)));
      // Merged, not replaced: another node's opening (or closing) counts, and so does this node's.
      if (stored) this.#breakers.set(target, mergeBreaker(this.#breakers.get(target) ?? closedBreaker(), stored));
      const hold = Number(await this.options.store.getMeta(holdKey(target)));
      if (hold > (this.#holds.get(target) ?? 0)) this.#holds.set(target, hold);
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.#writes.values());
  }

  /** Null: a delivery to `target` may go now. A time: hand it back until then. */
  admit(target: string): number | null {
    const { policy, clock, probeStaleMs } = this.options;
    const now = clock();
    const hold = this.#holds.get(target);
    if (hold !== undefined && hold > now) return hold;
    const state = this.#breakers.get(target) ?? closedBreaker();
    const admission = breakerAdmission(state, policy, now, probeStaleMs);
    if (admission === 'all') return null;
    if (admission === 'probe') {
      this.#setBreaker(target, breakerStarted(state, policy, now));
      return null;
    }
    // Open: wait for the cool-down; half-open with a probe out: look again shortly.
    return Math.max(breakerRetryAt(state, policy) ?? 0, now + 1_000);
  }

  /** A delivery's outcome: did the target answer as a working target? */
  result(target: string, ok: boolean): void {
    this.#setBreaker(target, breakerResult(this.#breakers.get(target) ?? closedBreaker(), this.options.policy, this.options.clock(), ok));
  }

  /** Nothing goes to `target` before `until`, on any node. */
  hold(target: string, until: number): void {
    if (until <= (this.#holds.get(target) ?? 0)) return;
    this.#holds.set(target, until);
    this.#write(holdKey(target), (raw) => String(Math.max(Number(raw) || 0, this.#holds.get(target) ?? 0)));
  }

  view(): Record<string, TargetView> {
    const { policy, clock } = this.options;
    const now = clock();
    const out: Record<string, TargetView> = {};
    for (const target of new Set([...this.#breakers.keys(), ...this.#holds.keys()])) {
      const at = breakerAt(this.#breakers.get(target) ?? closedBreaker(), policy, now);
      const probeAt = breakerRetryAt(at, policy);
      const hold = this.#holds.get(target);
      out[target] = {
        state: at.state,
        consecutiveFailures: at.consecutiveFailures,
        openedAt: at.openedAt === null ? null : new Date(at.openedAt).toISOString(),
        probeAt: probeAt === null ? null : new Date(probeAt).toISOString(),
        ...(hold !== undefined && hold > now ? { holdUntil: new Date(hold).toISOString() } : {}),
      };
    }
    return out;
  }

  #setBreaker(target: string, next: BreakerState): void {
    const before = this.#breakers.get(target) ?? closedBreaker();
    if (JSON.stringify(before) === JSON.stringify(next)) return;
    this.#breakers.set(target, next);
    // Merged into the stored state atomically, so nodes sharing the store agree on the target (supervision.ts does the same).
    this.#write(breakerKey(target), (raw) => {
      const stored = parseBreaker(raw);
      const local = this.#breakers.get(target) ?? closedBreaker();
      const merged = stored ? mergeBreaker(local, stored) : local;
      this.#breakers.set(target, merged);
      return JSON.stringify(merged);
    });
  }

  /** Writes to one key run one after another, so a slow write cannot land after a newer one. */
  #write(key: string, change: (raw: string | null) => string): void {
    const previous = this.#writes.get(key) ?? Promise.resolve();
    const write = previous
      .then(() => this.options.store.updateMeta(key, change))
      .then(() => undefined)
      .catch((error: unknown) => this.options.onError('action-target-write', toError(error)));
    this.#writes.set(key, write);
  }
}

/** A stored breaker, or null (none, or corrupt: a closed breaker, which the next result rewrites). */
function parseBreaker(raw: string | null): BreakerState | null {
  if (raw === null) return null;
  try {
    const parsed = JSON.parse(raw) as BreakerState;
    return parsed && typeof parsed.state === 'string' ? parsed : null;
  } catch {
    return null;
  }
}
