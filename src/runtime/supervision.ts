/**
 * Per-handler quarantine and circuit breaker, driven by the lifecycle
 * (attempt outcomes of in-process and remote workers alike) and read by the
 * dispatcher before it leases: a quarantined handler or an open breaker
 * means "lease nothing", a half-open breaker "lease one probe".
 *
 * State is stored as node metadata (`handler_supervision:<name>`, JSON) so it
 * survives a restart. With a shared store every node merges what it knows
 * into the stored state (an atomic read-modify-write, `updateMeta`) and
 * re-reads it every `refreshMs`: failures seen by any node count toward the
 * quarantine, a quarantine or an opened breaker recorded by any node holds
 * every node, and an operator reset clears them everywhere
 * (core/quarantine.ts, core/breaker.ts: `merge*`).
 */
import { breakerAdmission, breakerAt, breakerResult, breakerRetryAt, breakerStarted, closedBreaker, mergeBreaker, type BreakerState, type BreakerStateName } from '../core/breaker.js';
import type { ResolvedHandler } from '../core/config.js';
import { DroverError, toError } from '../core/errors.js';
import { clearQuarantine, mergeQuarantine, quarantineFailure, recentFailures, type QuarantineState } from '../core/quarantine.js';
import type { MetaStore } from '../store/engine.js';
import type { Lifecycle } from './lifecycle.js';

interface Entry {
  breaker: BreakerState;
  quarantine: QuarantineState;
  /** The last operator reset (ms; 0: never): nothing older survives a merge. Absent in states stored by older versions. */
  resetAt?: number;
}

export interface SupervisionOptions {
  store: MetaStore;
  handlers: ReadonlyMap<string, ResolvedHandler>;
  lifecycle: Lifecycle;
  clock: () => number;
  /** Something became dispatchable (cool-down over, reset): lease again. */
  wake: () => void;
  refreshMs?: number;
  /** Added to a handler's timeout: a probe older than that was lost with its node. */
  leaseMarginMs?: number;
  /** Tags this node's failures, so failures of two nodes in the same millisecond both count (core/quarantine.ts). */
  nodeId?: string;
}

/** The wire shape in `GET /v1/handlers`. */
export interface SupervisionView {
  quarantined: boolean;
  quarantinedAt: string | null;
  recentFailures: number;
  breaker: { state: BreakerStateName; consecutiveFailures: number; openedAt: string | null; probeAt: string | null };
}

const key = (name: string) => `handler_supervision:${name}`;
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export class Supervision {
  readonly #entries = new Map<string, Entry>();
  /** The write in flight per handler, and handlers changed since it started. */
  readonly #writes = new Map<string, Promise<void>>();
  readonly #dirty = new Set<string>();
  /** The last state announced on the lifecycle, per handler. */
  readonly #emitted = new Map<string, { quarantined: boolean; breaker: BreakerStateName }>();
  readonly #unsubscribe: Array<() => void> = [];
  /**
   * Closed breakers that a success leaves as they are (a full window of
   * successes, core/breaker.ts): the next success of a healthy handler
   * changes nothing, so it needs neither the clock nor the policy.
   */
  readonly #steady = new WeakSet<BreakerState>();
  #refresh: NodeJS.Timeout | null = null;
  #wakeTimer: NodeJS.Timeout | null = null;

  constructor(private readonly options: SupervisionOptions) {
    for (const name of options.handlers.keys()) this.#entries.set(name, { breaker: closedBreaker(), quarantine: clearQuarantine() });
  }

  async start(): Promise<void> {
    await this.load();
    const { lifecycle } = this.options;
    this.#unsubscribe.push(
      lifecycle.on('job:start', ({ job }) => this.#started(job.handler)),
      lifecycle.on('job:succeeded', ({ job }) => this.#outcome(job.handler, true)),
      lifecycle.on('job:failed', ({ job }) => this.#outcome(job.handler, false)),
    );
    if (this.options.store.capabilities.multiNode) {
      this.#refresh = setInterval(() => {
        this.load().catch((error: unknown) => lifecycle.emit('task:failed', { task: 'supervision-refresh', error: toError(error) }));
      }, this.options.refreshMs ?? 5_000);
      this.#refresh.unref();
    }
    this.#scheduleWake();
  }

  async stop(): Promise<void> {
    for (const off of this.#unsubscribe.splice(0)) off();
    if (this.#refresh) clearInterval(this.#refresh);
    if (this.#wakeTimer) clearTimeout(this.#wakeTimer);
    this.#refresh = this.#wakeTimer = null;
    await Promise.all(this.#writes.values());
  }

  /** Merge the stored state of every configured handler into this node's. */
  async load(): Promise<void> {
    for (const name of this.options.handlers.keys()) {
      const stored = parseEntry(await this.options.store.getMeta(key(name)));
      if (stored) this.#merge(name, stored);
    }
    this.#scheduleWake();
  }

  /** Most jobs of `name` that may start now: 0 (quarantined, open), 1 (probe) or Infinity. */
  slotLimit(name: string): number {
    const entry = this.#entries.get(name);
    // Asked for every job a dispatcher starts: a healthy handler's answer needs neither the clock nor its policy.
    if (entry !== undefined && entry.breaker.state === 'closed' && entry.quarantine.quarantinedAt === null) return Number.POSITIVE_INFINITY;
    const handler = this.options.handlers.get(name);
    if (!entry || !handler) return Number.POSITIVE_INFINITY;
    if (entry.quarantine.quarantinedAt !== null) return 0;
    const admission = breakerAdmission(entry.breaker, handler.breaker, this.options.clock(), handler.timeoutMs + (this.options.leaseMarginMs ?? 30_000));
    return admission === 'all' ? Number.POSITIVE_INFINITY : admission === 'probe' ? 1 : 0;
  }

  isQuarantined(name: string): boolean {
    return this.#entries.get(name)?.quarantine.quarantinedAt != null;
  }

  breakerState(name: string): BreakerStateName {
    const entry = this.#entries.get(name);
    const handler = this.options.handlers.get(name);
    return entry && handler ? breakerAt(entry.breaker, handler.breaker, this.options.clock()).state : 'closed';
  }

  view(name: string): SupervisionView {
    const entry = this.#entries.get(name) ?? { breaker: closedBreaker(), quarantine: clearQuarantine() };
    const handler = this.options.handlers.get(name);
    const now = this.options.clock();
    const breaker = handler ? breakerAt(entry.breaker, handler.breaker, now) : entry.breaker;
    return {
      quarantined: entry.quarantine.quarantinedAt !== null,
      quarantinedAt: iso(entry.quarantine.quarantinedAt),
      recentFailures: handler ? recentFailures(entry.quarantine, handler.quarantine, now) : 0,
      breaker: {
        state: breaker.state,
        consecutiveFailures: breaker.consecutiveFailures,
        openedAt: iso(breaker.openedAt),
        probeAt: handler ? iso(breakerRetryAt(breaker, handler.breaker)) : null,
      },
    };
  }

  /** Clear quarantine and breaker (operator reset); throws `not_found` for an unknown handler. */
  async reset(name: string): Promise<void> {
    if (!this.options.handlers.has(name)) {
      throw new DroverError('not_found', `no handler named "${name}"; configured: ${[...this.options.handlers.keys()].join(', ') || '(none)'}`);
    }
    const now = this.options.clock();
    this.#set(name, { breaker: { ...closedBreaker(), closedAt: now }, quarantine: clearQuarantine(), resetAt: now });
    await this.#persist(name);
    this.options.wake();
  }

  /** Fold another view of the handler's state (the stored one) into this node's. */
  #merge(name: string, other: Entry): Entry | undefined {
    const local = this.#entries.get(name);
    const handler = this.options.handlers.get(name);
    if (!local || !handler) return undefined;
    const resetAt = Math.max(local.resetAt ?? 0, other.resetAt ?? 0);
    const merged: Entry = {
      breaker: mergeBreaker(local.breaker, other.breaker),
      quarantine: mergeQuarantine(local.quarantine, other.quarantine, handler.quarantine, this.options.clock(), resetAt),
      ...(resetAt > 0 ? { resetAt } : {}),
    };
    this.#set(name, merged);
    return merged;
  }

  /** A job started: the probe, when half-open. A closed breaker does not change (the case of every job of a healthy handler). */
  #started(name: string): void {
    const entry = this.#entries.get(name);
    const handler = this.options.handlers.get(name);
    if (!entry || !handler || entry.breaker.state === 'closed') return;
    const breaker = breakerStarted(entry.breaker, handler.breaker, this.options.clock());
    if (breaker !== entry.breaker) this.#update(name, entry, { ...entry, breaker });
  }

  #outcome(name: string, ok: boolean): void {
    const entry = this.#entries.get(name);
    const handler = this.options.handlers.get(name);
    if (!entry || !handler || (ok && this.#steady.has(entry.breaker))) return;
    const now = this.options.clock();
    // The core functions return the same objects when nothing changed (a
    // healthy handler's success): then nothing is built or stored.
    const breaker = breakerResult(entry.breaker, handler.breaker, now, ok);
    if (ok && breaker === entry.breaker && breaker.state === 'closed') this.#steady.add(breaker);
    const quarantine = ok ? entry.quarantine : quarantineFailure(entry.quarantine, handler.quarantine, now, this.options.nodeId);
    if (breaker !== entry.breaker || quarantine !== entry.quarantine) this.#update(name, entry, { breaker, quarantine });
  }

  /** Adopt a changed state: store it and re-arm the probe timer, unless it serialises the same. */
  #update(name: string, entry: Entry, next: Entry): void {
    if (JSON.stringify(next) === JSON.stringify(entry)) return;
    this.#set(name, next);
    void this.#persist(name);
    this.#scheduleWake();
  }

  #set(name: string, next: Entry): void {
    this.#entries.set(name, next);
    const handler = this.options.handlers.get(name);
    if (!handler) return;
    const was = this.#emitted.get(name);
    const is = { quarantined: next.quarantine.quarantinedAt !== null, breaker: breakerAt(next.breaker, handler.breaker, this.options.clock()).state };
    if (!was || was.quarantined !== is.quarantined || was.breaker !== is.breaker) {
      this.#emitted.set(name, is);
      this.options.lifecycle.emit('handler:supervision', { handler: name, ...is });
      // Let out by another node (its reset or probe, seen in the stored state): lease again.
      if (was && ((was.quarantined && !is.quarantined) || (was.breaker === 'open' && is.breaker !== 'open'))) this.options.wake();
    }
  }

  /**
   * Store the handler's current state. One write per handler is in flight at a
   * time, so an older state never lands after a newer one; changes made while
   * it is in flight are coalesced into one more write of the latest state (a
   * handler failing thousands of jobs a second writes a few rows, not thousands).
   */
  #persist(name: string): Promise<void> {
    const inFlight = this.#writes.get(name);
    if (inFlight) {
      this.#dirty.add(name);
      return inFlight;
    }
    const write = (async () => {
      do {
        this.#dirty.delete(name);
        try {
          // Merge with what other nodes stored, store the result, and adopt it here too.
          await this.options.store.updateMeta(key(name), (current) => {
            const stored = parseEntry(current);
            const merged = stored ? this.#merge(name, stored) : this.#entries.get(name);
            return merged ? JSON.stringify(merged) : null;
          });
          this.#scheduleWake();
        } catch (error) {
          this.options.lifecycle.emit('task:failed', { task: 'supervision-write', error: toError(error) });
        }
      } while (this.#dirty.has(name));
      // In the same turn as the last check, so no change can slip in between.
      this.#writes.delete(name);
    })();
    this.#writes.set(name, write);
    return write;
  }

  /** Wake the dispatcher when the earliest open breaker admits its probe. */
  #scheduleWake(): void {
    let earliest: number | null = null;
    for (const [name, entry] of this.#entries) {
      const handler = this.options.handlers.get(name);
      const at = handler ? breakerRetryAt(entry.breaker, handler.breaker) : null;
      if (at !== null && (earliest === null || at < earliest)) earliest = at;
    }
    if (this.#wakeTimer) clearTimeout(this.#wakeTimer);
    this.#wakeTimer = null;
    if (earliest === null) return;
    const delay = Math.min(Math.max(0, earliest - this.options.clock()) + 5, 2_147_483_647);
    this.#wakeTimer = setTimeout(() => {
      this.#wakeTimer = null;
      // Emits the open → half_open transition for metrics and the stream.
      for (const name of this.#entries.keys()) {
        const entry = this.#entries.get(name);
        if (entry) this.#set(name, entry);
      }
      this.options.wake();
    }, delay);
    this.#wakeTimer.unref();
  }
}

/** A stored state, or null (none, or corrupt: the handler runs, and the next outcome rewrites it). */
function parseEntry(raw: string | null): Entry | null {
  if (raw === null) return null;
  try {
    const parsed = JSON.parse(raw) as Entry;
    return parsed && parsed.breaker && parsed.quarantine ? parsed : null;
  } catch {
    return null;
  }
}
