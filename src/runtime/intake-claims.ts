/**
 * Slots the dispatcher (dispatcher.ts) holds for an enqueue's jobs while its
 * insert leases them (engines with `leaseAtIntake`), so they start as soon as
 * it commits: one round trip from enqueue to start instead of the insert's
 * and then a lease's. What a claim needs from the lanes is `ClaimLanes` (the
 * lease pump's idle set and lanes, the room's slots); the dispatcher starts
 * the claimed jobs itself (`Dispatcher.startClaimed`) and asks this only to
 * settle the claim. Shutdown waits for claims still out (`settled`).
 */
import type { NewJob } from '../core/types.js';
import type { IntakeLease } from '../store/engine.js';
import type { Lane } from './attempt.js';
import type { DispatcherOptions } from './dispatcher-options.js';
import type { LeaseRoom } from './lease-room.js';

/** Slots held for an enqueue's jobs while its insert leases them (`Dispatcher.claimAtIntake`). */
export interface IntakeClaim {
  /** Per job of the call, the lane holding a slot for it; null: inserted as usual. */
  readonly lanes: ReadonlyArray<Lane | null>;
  /** What the store is asked to lease (`EnqueueOptions.lease`). */
  readonly lease: IntakeLease;
}

/** The dispatcher's options a claim reads. */
export type IntakeClaimOptions = Pick<DispatcherOptions, 'workerId' | 'isHandlerPaused' | 'pausedQueues' | 'tenantCaps'>;

/** What a claim reads of the lanes (the lease pump has them). */
export interface ClaimLanes {
  readonly stopped: boolean;
  /** Handlers whose last lease found nothing more. */
  readonly idleHandlers: ReadonlySet<string>;
  readonly lanes: ReadonlyMap<string, Lane>;
}

export class IntakeClaims {
  /** Claims whose insert is still out, or whose unstarted jobs are being handed back: shutdown waits for them. */
  readonly #claims = new Map<IntakeClaim, { settled: Promise<void>; settle(): void }>();

  constructor(
    private readonly options: IntakeClaimOptions,
    private readonly pump: ClaimLanes,
    private readonly room: Pick<LeaseRoom, 'slots' | 'leaseMsFor'>,
  ) {}

  /** Dispatcher.claimAtIntake says what this does. */
  claim(jobs: readonly NewJob[], now: number): IntakeClaim | null {
    const { lanes: byName, idleHandlers } = this.pump;
    if (this.pump.stopped || this.options.tenantCaps || jobs.some((job) => job.idempotencyKey != null)) return null;
    const due = new Map<Lane, number>();
    for (const job of jobs) {
      const lane = job.runAt <= now ? byName.get(job.handler) : undefined;
      if (lane) due.set(lane, (due.get(lane) ?? 0) + 1);
    }
    const open = new Set<Lane>();
    for (const [lane, n] of due) {
      const { handler } = lane;
      if (!idleHandlers.has(handler.name) || handler.remote || handler.rateLimit || handler.name.startsWith('drover.')) continue;
      if (this.options.isHandlerPaused?.(handler.name) || lane.buffer.length > 0 || this.room.slots(lane) - lane.running < n) continue;
      open.add(lane);
    }
    if (open.size === 0) return null;
    const paused = this.options.pausedQueues?.() ?? [];
    const lanes: Array<Lane | null> = jobs.map((job) => {
      const lane = byName.get(job.handler)!;
      return open.has(lane) && job.runAt <= now && job.concurrencyKey == null && !paused.includes(job.queue) ? lane : null;
    });
    if (lanes.every((lane) => lane === null)) return null;
    for (const lane of lanes) if (lane) lane.running++;
    const claim: IntakeClaim = { lanes, lease: { workerId: this.options.workerId, leaseMs: lanes.map((lane) => (lane ? this.room.leaseMsFor(lane.handler) : null)) } };
    let settle!: () => void;
    const settled = new Promise<void>((resolve) => (settle = resolve));
    this.#claims.set(claim, { settled, settle });
    return claim;
  }

  /** The claim is over once `handedBack` (its unstarted jobs going back; never rejects) settles. */
  settle(claim: IntakeClaim, handedBack: Promise<unknown>): void {
    const entry = this.#claims.get(claim);
    void handedBack.then(() => {
      this.#claims.delete(claim);
      entry?.settle();
    });
  }

  /** Settles when every claim now out is over. */
  settled(): Promise<unknown> {
    return Promise.all([...this.#claims.values()].map((claim) => claim.settled));
  }
}
