/**
 * How long each queue has been refusing work (backpressure): from the first
 * intake this node refused with `queue_full` until the queue accepts a job
 * again, or is seen below its `maxDepth` (a queue that drained while nobody
 * tried to enqueue is no longer refusing). Read by `GET /v1/queues` and by
 * `drover_queue_backpressure_seconds`; the "backpressure sustained" alert
 * fires on it.
 *
 * Per node: each node knows the refusals it answered itself, so take the
 * `max` across nodes.
 */
export class QueueRefusals {
  readonly #since = new Map<string, number>();

  constructor(private readonly clock: () => number) {}

  /** Intake into `queue` was refused for lack of room. */
  refused(queue: string): void {
    if (!this.#since.has(queue)) this.#since.set(queue, this.clock());
  }

  /** A job was accepted into `queue`: it has room again. */
  accepted(queue: string): void {
    this.#since.delete(queue);
  }

  /**
   * Seconds `queue` has been refusing work, 0 while it accepts. With
   * `depth` (its unfinished jobs now) and `maxDepth`, a queue below its limit
   * stops counting as refusing.
   *
   * @example
   * refusals.seconds('emails', { depth: 120, maxDepth: 1000 }); // 0: it has room
   */
  seconds(queue: string, fill?: { depth: number; maxDepth: number }): number {
    const since = this.#since.get(queue);
    if (since === undefined) return 0;
    if (fill && fill.depth < fill.maxDepth) {
      this.#since.delete(queue);
      return 0;
    }
    return Math.max(0, (this.clock() - since) / 1000);
  }

  /** Queues refusing now. */
  queues(): string[] {
    return [...this.#since.keys()];
  }
}
