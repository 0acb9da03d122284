/**
 * How many jobs a quick handler leases ahead: about `LEASE_AHEAD_MS` of its
 * own work, in jobs. The window is also how many already-leased jobs a quiet
 * tenant's first job or a new high-priority job may be overtaken by, and how
 * much work one node holds back from the others, so it is sized in time:
 * a lane finishing 10 jobs a millisecond holds more jobs, not more time, than
 * one finishing 1. Larger windows mean fewer, larger leases (docs/benchmarks.md
 * "A lease-ahead window sized in time").
 *
 * The rate is not known at first, and it is measured on a lane that may be
 * waiting for its leases: a window too small for a lease's round trip runs
 * dry before each refill arrives, and the rate it then shows keeps the window
 * small. So the window also reaches past the rate's size when leases show the
 * need (`nextReach`): a lease that came back full to a lane that ran dry
 * doubles it; once the lane stops running dry, it holds four round trips of
 * the lane's work (the refill at half the window then arrives with two to
 * spare). docs/benchmarks.md, "A drain at full speed from its first jobs".
 */

/** Milliseconds of a lane's work its lease-ahead buffer holds (at its measured completion rate). */
export const LEASE_AHEAD_MS = 20;
/** The window never shrinks below `max(concurrency, LEASE_AHEAD_MIN)` jobs (the fixed window it replaced). */
export const LEASE_AHEAD_MIN = 64;
/**
 * Nor grows past this many jobs. A buffered job's row and payload are held in
 * memory until it starts; and the half-empty refill of a window this size
 * already asks for about one full lease (`leaseBatch`, 250), so a larger one
 * would not make leases larger, only the buffer.
 */
export const LEASE_AHEAD_MAX = 512;
/**
 * The window of a `--low-memory` SQLite node: fixed at `LEASE_AHEAD_MIN`, the window
 * before it was sized in time. A leased job's row, and what the dispatcher
 * builds for it, lives until the job has run and settled; with 4 MiB
 * semi-spaces a 20 ms window at ~20 jobs/ms outlives two scavenges, so it is
 * promoted to old space and left for a major GC. On a SQLite drain the
 * 64-job window cut what was promoted from ~41 to ~19 MiB and the peak RSS
 * by 3–5 MiB, for no more CPU per job. On PostgreSQL, where each lease is a
 * round trip, it saved nothing and cost ~18 % more CPU per job: not used there
 * (docs/benchmarks.md, seventh pass).
 */
export const LOW_MEMORY_LEASE_AHEAD = LEASE_AHEAD_MIN;
/** The completion rate is measured over spans of at least this long. */
const SPAN_MS = 50;

/**
 * Jobs to lease ahead for a lane of `concurrency` slots that finishes
 * `jobsPerMs` jobs a millisecond.
 *
 * @example
 * leaseAheadWindow(10, 0) // 64: no rate known yet
 * leaseAheadWindow(10, 12) // 240: 20 ms at 12 jobs/ms
 * leaseAheadWindow(100, 100) // 512: capped
 */
export function leaseAheadWindow(concurrency: number, jobsPerMs: number, reach = 0): number {
  const floor = Math.max(concurrency, LEASE_AHEAD_MIN);
  return Math.max(floor, Math.min(LEASE_AHEAD_MAX, Math.max(reach, Math.round(jobsPerMs * LEASE_AHEAD_MS))));
}

/** What a lane did while one of its leases was out, as `nextReach` reads it. */
export interface LeaseRoundTrip {
  /** The lane's window when the lease was asked for. */
  window: number;
  /** Jobs it started from its buffer while the lease was out. */
  ran: number;
  /** It had jobs buffered when it asked, and when the lease returned none and a slot free (it waited for the lease). */
  dry: boolean;
  /** The lease brought all the lane asked for (more may be due). */
  filled: boolean;
}

/**
 * A lane's reach (jobs; 0: none) after one of its leases: the window it needs
 * beyond its rate's (`leaseAheadWindow`). Bounded in time, like the window:
 * a lane runs dry only when it got through half its window within one lease
 * round trip, so a doubled window is at most about four round trips of its
 * work, and once it stops running dry the reach follows what it runs in a
 * round trip (falling as the lane slows or the store answers sooner). The
 * dispatcher drops it when the lane goes idle.
 *
 * @example
 * nextReach(0, { window: 64, ran: 32, dry: true, filled: true }) // 128
 * nextReach(128, { window: 128, ran: 40, dry: false, filled: true }) // 160
 * nextReach(0, { window: 64, ran: 5, dry: false, filled: true }) // 0: never ran dry
 */
export function nextReach(reach: number, trip: LeaseRoundTrip): number {
  if (trip.dry && trip.filled) return Math.min(LEASE_AHEAD_MAX, trip.window * 2);
  if (reach === 0) return 0;
  return Math.min(LEASE_AHEAD_MAX, trip.ran * 4);
}

/**
 * A lane's completions per millisecond while it is busy: counted over spans
 * of at least `SPAN_MS`, each averaged with the last. A gap of `SPAN_MS`
 * without a completion starts a new span at the next one, so an idle lane's
 * pause is not taken for its speed. The handler's own run time would not do:
 * a no-op handler returns in microseconds while each of its jobs holds a slot
 * for its start mark and lease round trips too.
 *
 * @example
 * const rate = new CompletionRate();
 * rate.note(clock()); // as each job's handler returns
 * leaseAheadWindow(concurrency, rate.perMs);
 */
export class CompletionRate {
  /**
   * Jobs per ms; 0 until a span has been measured. Starts as -0 (=== 0) so V8
   * holds the field as a double from the first: a field or division that first
   * saw whole numbers deoptimises the per-job path it is inlined into
   * (`Dispatcher#attempt`) the first time it meets a fraction.
   */
  perMs = -0;
  #since = Number.NEGATIVE_INFINITY;
  #last = Number.NEGATIVE_INFINITY;
  #count = 0;

  note(now: number): void {
    // Every branch but the span check runs its stores and arithmetic on every span, with no cold
    // path: this is inlined into `Dispatcher#attempt`, and code first reached after the optimiser
    // compiled it (a pause, the second span) threw that code away and had it compiled again.
    if (now - this.#last <= SPAN_MS) {
      this.#count++;
      const span = now - this.#since;
      if (span < SPAN_MS) {
        this.#last = now;
        return;
      }
      // Times a reciprocal, not `count / span`: a division that comes out whole is recorded as integer-only.
      const rate = this.#count * (1 / span);
      const keep = this.perMs === 0 ? 0 : 0.5;
      this.perMs = this.perMs * keep + rate * (1 - keep);
    }
    // A new span: after a measured one, or after a pause (an idle lane's pause is not its speed).
    this.#since = now;
    this.#count = 0;
    this.#last = now;
  }
}
