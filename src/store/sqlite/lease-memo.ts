/**
 * What this engine remembers of the leases it handed out, by job id, so the
 * per-job calls that follow a lease do less store work:
 *
 * - `start` of a job the lease itself marked started (`LeaseRequest.start`,
 *   as PostgreSQL's lease does) answers at once instead of writing a mark;
 * - a settle (complete, fail, release) whose fenced update matched takes the
 *   job's queue, lease number, worker id and lease time (its attempt row)
 *   from here instead of reading them back.
 *
 * Only a lease that committed is remembered (the engine adds its entries once
 * the lease's write resolved), and an entry is used only for the very token
 * that lease issued: tokens are random and a fenced update matches only the
 * current one, so an entry either describes the lease the caller holds or is
 * never looked at. One is dropped when its lease ends here (settled,
 * reclaimed, cancelled); a missing entry costs only the read or the mark it
 * would have saved, so the memo is bounded by simply forgetting everything.
 */
export interface HeldLease {
  id: string;
  token: string;
  queue: string;
  /** The job's `lease_seq` under this lease: its attempt row's number. */
  seq: number;
  /** The lease's worker id and start time: with `seq`, the attempt row its end writes (fenced.ts). */
  workerId: string;
  leasedAt: number;
  /** Marked started by the lease: the first `start` answers without a write. */
  marked: boolean;
}

/** Far more than one node holds at once (its handlers' concurrency plus lease-ahead). */
const MAX_HELD = 100_000;

export class LeaseMemo {
  readonly #held = new Map<string, HeldLease>();

  /** A committed lease's jobs. */
  remember(leases: readonly HeldLease[]): void {
    if (this.#held.size + leases.length > MAX_HELD) this.#held.clear();
    for (const lease of leases) this.#held.set(lease.id, lease);
  }

  /** True once per lease the lease itself marked started, for its own token. */
  takeMark(jobId: string, token: string): boolean {
    const held = this.#held.get(jobId);
    if (held === undefined || !held.marked || held.token !== token) return false;
    held.marked = false;
    return true;
  }

  /** The lease `token` ended by a fenced update that matched: its entry, if remembered (and forgotten now). */
  settled(jobId: string, token: string): HeldLease | undefined {
    const held = this.#held.get(jobId);
    if (held === undefined || held.token !== token) return undefined;
    this.#held.delete(jobId);
    return held;
  }

  /** The job's lease ended some other way (reclaimed, cancelled). */
  forget(jobId: string): void {
    this.#held.delete(jobId);
  }

  get size(): number {
    return this.#held.size;
  }
}
