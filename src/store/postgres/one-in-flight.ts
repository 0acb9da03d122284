/**
 * The batching of the hot-path writers (settle-batch.ts, enqueue-batch.ts):
 * calls made while a batch is in flight join the next one, and one batch is
 * in flight at a time. When idle, a call goes out on the next turn of the
 * event loop (setImmediate, so every caller woken in the same I/O phase
 * joins it). Under load a batch carries as many calls as arrived during the
 * previous round trip; idle, it adds no wait beyond that one turn.
 *
 * `urgent` (optional): pending calls that may not wait for the batch in
 * flight. When one is pending, a second batch goes out beside it (never a
 * third). The enqueues of an idle node use it (enqueue-batch.ts says why).
 */
export class OneInFlight<P> {
  #pending: P[] = [];
  readonly #running = new Set<Promise<void>>();
  #scheduled = false;

  /**
   * `take`: how many of the pending calls (at least one) go in the next batch.
   * `run`: sends a batch and settles each of its calls; it must not throw.
   */
  constructor(
    private readonly take: (pending: readonly P[]) => number,
    private readonly run: (batch: P[]) => Promise<void>,
    private readonly urgent?: (call: P) => boolean,
  ) {}

  push(call: P): void {
    this.#pending.push(call);
    this.#schedule();
  }

  /** Resolves once every call pushed so far has been sent and settled. */
  async drain(): Promise<void> {
    while (this.#running.size > 0 || this.#pending.length > 0) {
      if (this.#running.size > 0) await Promise.race(this.#running);
      else await this.#flush();
    }
  }

  /** A batch may go now: none in flight, or one and an urgent call waits. */
  #mayGo(): boolean {
    if (this.#running.size === 0) return true;
    return this.#running.size === 1 && this.urgent !== undefined && this.#pending.some(this.urgent);
  }

  #schedule(): void {
    if (this.#scheduled || !this.#mayGo()) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      if (this.#pending.length > 0 && this.#mayGo()) void this.#flush();
    });
  }

  #flush(): Promise<void> {
    const batch = this.#pending.splice(0, Math.max(1, this.take(this.#pending)));
    if (batch.length === 0) return Promise.resolve();
    const running: Promise<void> = this.run(batch).finally(() => {
      this.#running.delete(running);
      if (this.#pending.length > 0) this.#schedule();
    });
    this.#running.add(running);
    return running;
  }
}
