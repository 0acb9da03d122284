/**
 * Leases whose commit this node could not confirm: a lease (or an insert
 * leasing its own jobs) failed for a connection reason, so it may have
 * committed jobs to this worker that nobody here will run. They are undone by
 * call id (`RELEASE_BY_CALL`: queued again, attempt not spent) before the
 * worker leases again, as before.
 *
 * Undoing once is not enough. The statement the node gave up on may reach the
 * server later: on a path that went silent, its bytes wait in the network (or
 * in a session the server kept) and run when the path heals, possibly after
 * the undo. Its jobs would then sit `running` for a node that does not know
 * them until their lease expires (handler timeout + 30 s): after a short
 * outage, every job of that lease waited out the lease. So a call stays known
 * until its leases would have expired anyway (the reaper takes over then; at
 * most `SWEEP_FOR_MAX_MS`), and is undone again every `SWEEP_MS` in the background meanwhile. A sweep
 * is one indexed UPDATE that usually changes nothing; it runs only after an
 * outage, for at most one lease length.
 */
import { delay } from './connection.js';

/** How often calls already undone once are undone again (their late commits are held this long at most). */
export const SWEEP_MS = 1_000;

/**
 * Longest a call is swept for, whatever its lease: a statement the client gave
 * up on arrives within minutes or never (TCP abandons an orphaned socket's
 * retransmissions after about 100 s by default, `tcp_orphan_retries`), and a
 * handler with an hours-long timeout should not cost a sweep a second for hours.
 */
export const SWEEP_FOR_MAX_MS = 10 * 60_000;

/** Runs `RELEASE_BY_CALL` (lease.ts) for these calls of the worker; answers the queues of the jobs it put back. */
export type Release = (workerId: string, calls: string[], now: number) => Promise<Array<{ queue: string }>>;

interface Call {
  workerId: string;
  /** When its leases expire anyway (the latest of them), or `SWEEP_FOR_MAX_MS` from now if sooner. */
  until: number;
  /** Undone at least once (leasing may go on; the sweep catches a late commit). */
  undone: boolean;
}

export class UncertainLeases {
  readonly #calls = new Map<string, Call>();
  #sweeping = false;
  #closed = false;

  constructor(
    private readonly release: Release,
    private readonly clock: () => number,
    /** Jobs went back to these queues: wake who leases them. */
    private readonly woke: (queues: string[]) => void,
    private readonly sweepMs = SWEEP_MS,
  ) {}

  /** A lease call (or leasing insert) failed for a connection reason; its leases would expire by `until`. */
  note(call: string, workerId: string, until: number): void {
    this.#calls.set(call, { workerId, until: Math.min(until, this.clock() + SWEEP_FOR_MAX_MS), undone: false });
  }

  /** Before `workerId` leases: undo its calls not undone yet (throws when the store cannot be reached; lease nothing then). */
  async beforeLease(workerId: string): Promise<void> {
    let fresh = false;
    for (const call of this.#calls.values()) if (call.workerId === workerId && !call.undone) fresh = true;
    if (!fresh) return;
    await this.#undo(workerId);
    this.#sweepLater();
  }

  close(): void {
    this.#closed = true;
    this.#calls.clear();
  }

  /** Undo every known call of `workerId`; forget those whose leases have expired. */
  async #undo(workerId: string): Promise<void> {
    const now = this.clock();
    const calls: string[] = [];
    for (const [id, call] of this.#calls) {
      if (call.workerId !== workerId) continue;
      if (call.until < now) this.#calls.delete(id);
      else calls.push(id);
    }
    if (calls.length === 0) return;
    const rows = await this.release(workerId, calls, now);
    for (const id of calls) {
      const call = this.#calls.get(id);
      if (call) call.undone = true;
    }
    if (rows.length > 0) this.woke([...new Set(rows.map((r) => r.queue))]);
  }

  /** Sweep every `sweepMs` while calls are known; a failed sweep (store down) is tried again at the next. */
  #sweepLater(): void {
    if (this.#sweeping || this.#closed) return;
    this.#sweeping = true;
    void (async () => {
      while (!this.#closed && this.#calls.size > 0) {
        await delay(this.sweepMs, { unref: true });
        for (const workerId of new Set([...this.#calls.values()].map((call) => call.workerId))) {
          if (this.#closed) break;
          await this.#undo(workerId).catch(() => undefined);
        }
      }
      this.#sweeping = false;
    })();
  }
}
