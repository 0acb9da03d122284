/**
 * The batching of the hot-path writers (settle-batch.ts, enqueue-batch.ts):
 * calls made while a batch is in flight join the next one, and one batch is
 * in flight at a time. When idle, a call goes out on the next turn of the
 * event loop (setImmediate, so every caller woken in the same I/O phase
 * joins it). Under load a batch carries as many calls as arrived during the
 * previous round trip; idle, it adds no wait beyond that one turn.
 */
export class OneInFlight<P> {
  #pending: P[] = [];
  #running: Promise<void> | null = null;
  #scheduled = false;

  /**
   * `take`: how many of the pending calls (at least one) go in the next batch.
   * `run`: sends a batch and settles each of its calls; it must not throw.
   */
  constructor(
    private readonly take: (pending: readonly P[]) => number,
    private readonly run: (batch: P[]) => Promise<void>,
  ) {}

  push(call: P): void {
    this.#pending.push(call);
    this.#schedule();
  }

  /** Resolves once every call pushed so far has been sent and settled. */
  async drain(): Promise<void> {
    while (this.#running || this.#pending.length > 0) {
      if (this.#running) await this.#running;
      else await this.#flush();
    }
  }

  #schedule(): void {
    if (this.#scheduled || this.#running) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      if (!this.#running) void this.#flush();
    });
  }

  #flush(): Promise<void> {
    const batch = this.#pending.splice(0, Math.max(1, this.take(this.#pending)));
    if (batch.length === 0) return Promise.resolve();
    this.#running = this.run(batch).finally(() => {
      this.#running = null;
      if (this.#pending.length > 0) this.#schedule();
    });
    return this.#running;
  }
}
