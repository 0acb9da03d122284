/**
 * The runtime's lifecycle emitter, over the typed event map in
 * core/lifecycle-events.ts. Logs, metrics, traces and SSE subscribe (wired in
 * runtime/observers.ts); the runtime only emits. A throwing listener is caught
 * and reported, never allowed to break the dispatch loop.
 */
import { toError } from '../core/errors.js';
import type { LifecycleEvents, LifecycleListener, LifecycleName, LifecycleSubscriber } from '../core/lifecycle-events.js';

// The contract's names, for the runtime's own modules that import them from here.
export type { LifecycleEvents, LifecycleName, RemoteOrigin } from '../core/lifecycle-events.js';

type Listener<K extends LifecycleName> = LifecycleListener<K>;

export class Lifecycle implements LifecycleSubscriber {
  readonly #listeners = new Map<LifecycleName, Set<Listener<any>>>();
  readonly #onListenerError: (error: Error, event: LifecycleName) => void;

  constructor(onListenerError: (error: Error, event: LifecycleName) => void = () => {}) {
    this.#onListenerError = onListenerError;
  }

  on<K extends LifecycleName>(event: K, listener: Listener<K>): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  /** Whether anyone listens to `event`: a hot path may skip building a payload nobody reads. */
  listens(event: LifecycleName): boolean {
    const set = this.#listeners.get(event);
    return set !== undefined && set.size > 0;
  }

  emit<K extends LifecycleName>(event: K, payload: LifecycleEvents[K]): void {
    const set = this.#listeners.get(event);
    if (!set) return;
    for (const listener of set) {
      try {
        listener(payload);
      } catch (error) {
        try {
          this.#onListenerError(toError(error), event);
        } catch {
          // The error reporter itself failed; nothing sensible is left to do.
        }
      }
    }
  }
}
