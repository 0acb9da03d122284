/**
 * How many jobs a quick handler leases ahead: about `LEASE_AHEAD_MS` of its
 * own work, in jobs. The window is also how many already-leased jobs a quiet
 * tenant's first job or a new high-priority job may be overtaken by, and how
 * much work one node holds back from the others, so it is sized in time:
 * a lane finishing 10 jobs a millisecond holds more jobs, not more time, than
 * one finishing 1. Larger windows mean fewer, larger leases (docs/benchmarks.md
 * "A lease-ahead window sized in time").
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
export function leaseAheadWindow(concurrency: number, jobsPerMs: number): number {
  const floor = Math.max(concurrency, LEASE_AHEAD_MIN);
  return Math.max(floor, Math.min(LEASE_AHEAD_MAX, Math.round(jobsPerMs * LEASE_AHEAD_MS)));
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
  /** Jobs per ms; 0 until a span has been measured. */
  perMs = 0;
  #since = Number.NEGATIVE_INFINITY;
  #last = Number.NEGATIVE_INFINITY;
  #count = 0;

  note(now: number): void {
    if (now - this.#last > SPAN_MS) {
      this.#since = now;
      this.#count = 0;
    } else {
      this.#count++;
      const span = now - this.#since;
      if (span >= SPAN_MS) {
        const rate = this.#count / span;
        this.perMs = this.perMs === 0 ? rate : (this.perMs + rate) / 2;
        this.#since = now;
        this.#count = 0;
      }
    }
    this.#last = now;
  }
}
