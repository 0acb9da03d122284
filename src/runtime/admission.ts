/**
 * May a handler's job start now? One answer for the node's own dispatcher and
 * for remote workers' leases (POST /v1/workers/lease), so a handler that is
 * paused, quarantined, behind an open circuit breaker or over its rate limit
 * is held the same way wherever its jobs would run.
 */
import type { ResolvedHandler } from '../core/config.js';
import type { LeasedJob } from '../core/types.js';
import type { PauseState } from './pauses.js';
import type { RateLimits } from './rate-limits.js';
import type { Supervision } from './supervision.js';
import type { RuntimeTriggers } from './actions/runtime-triggers.js';

export class Admission {
  constructor(private readonly parts: { pauses: PauseState; supervision: Supervision; rateLimits: RateLimits; triggers: RuntimeTriggers }) {}

  /** No job of the handler may start: it is paused, quarantined, or its breaker is open. */
  isHeld(name: string): boolean {
    return this.parts.pauses.isHandlerPaused(name) || this.parts.supervision.slotLimit(name) === 0;
  }

  /** Most jobs of the handler that may run at once now: 0 (held), 1 (the breaker's probe) or Infinity. */
  slotLimit(name: string): number {
    return this.parts.supervision.slotLimit(name);
  }

  /** Jobs of a handler with a key-less rate limit that may still start now; undefined without one. */
  room(handler: ResolvedHandler): number | undefined {
    return this.parts.rateLimits.room(handler);
  }

  /**
   * A leased job may start: null (now, and it is counted against its rate
   * limit), or the time to hand it back until; a promise of either when the
   * store keeps the rate limit's window (shared by several nodes).
   */
  admit(job: LeasedJob, handler: ResolvedHandler): number | null | Promise<number | null> {
    const { triggers, rateLimits } = this.parts;
    return triggers.owns(handler) ? triggers.admit(job) : rateLimits.admit(job, handler);
  }

  /**
   * Jobs of `handler` a remote worker may lease now, at most `max`. A remote
   * worker reports when a job starts only by leasing it, so the breaker's
   * probe is one job per lease, and a rate limit caps the lease itself.
   */
  remoteRoom(handler: ResolvedHandler, max: number): number {
    if (this.isHeld(handler.name)) return 0;
    return Math.min(max, this.slotLimit(handler.name), this.room(handler) ?? Number.POSITIVE_INFINITY);
  }
}
