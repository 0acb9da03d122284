/**
 * Due work that a write made available, gathered while it runs and told to
 * the `WorkListener`s after its commit (both engines; see roles/connection.ts
 * for the contract). It names the handlers whose jobs got due, so a node
 * leases for those only instead of for every idle handler; a change that
 * may have freed work of any handler (a concurrency key let go) names none.
 */
export class Woken {
  /** Queues that got due work. */
  readonly queues = new Set<string>();
  /** Handlers whose jobs got due; null: any handler may have work. */
  #handlers: Set<string> | null = new Set();

  /**
   * A job of `handler` in `queue` is due now. Without a handler: work of any
   * handler in that queue may be (say so when the writer cannot tell).
   */
  add(queue: string, handler: string | null): void {
    this.queues.add(queue);
    if (handler === null) this.#handlers = null;
    else this.#handlers?.add(handler);
  }

  /** Fold another write's effects into this (a group commit's batch). */
  merge(from: Woken): void {
    for (const queue of from.queues) this.queues.add(queue);
    if (from.#handlers === null) this.#handlers = null;
    else if (this.#handlers) for (const handler of from.#handlers) this.#handlers.add(handler);
  }

  /** Nothing got due. */
  get empty(): boolean {
    return this.queues.size === 0;
  }

  /** The handlers to tell listeners about; undefined: any handler. */
  get handlers(): readonly string[] | undefined {
    return this.#handlers ? [...this.#handlers] : undefined;
  }

  /** Due work in `queues` of these `handlers`; null: any handler (a statement that reports queues only). */
  static of(queues: Iterable<string>, handlers: Iterable<string> | null): Woken {
    const woken = new Woken();
    for (const queue of queues) woken.queues.add(queue);
    if (handlers === null) woken.#handlers = null;
    else for (const handler of handlers) woken.#handlers!.add(handler);
    return woken;
  }
}
