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

/**
 * One event's emitter, for a hot path that emits it for every job: no lookup
 * by name per emit, and `listening` says whether a payload is worth building.
 */
export interface LifecycleChannel<K extends LifecycleName> {
  readonly listening: boolean;
  emit(payload: LifecycleEvents[K]): void;
}

export class Lifecycle implements LifecycleSubscriber {
  readonly #listeners = new Map<LifecycleName, Set<Listener<any>>>();
  readonly #onListenerError: (error: Error, event: LifecycleName) => void;

  constructor(onListenerError: (error: Error, event: LifecycleName) => void = () => {}) {
    this.#onListenerError = onListenerError;
  }

  on<K extends LifecycleName>(event: K, listener: Listener<K>): () => void {
    const set = this.#set(event);
    set.add(listener);
    return () => set.delete(listener);
  }

  emit<K extends LifecycleName>(event: K, payload: LifecycleEvents[K]): void {
    const set = this.#listeners.get(event);
    if (set) this.#deliver(event, set, payload);
  }

  /**
   * @example
   * const started = lifecycle.channel('job:start');
   * if (started.listening) started.emit({ job, waitMs });
   */
  channel<K extends LifecycleName>(event: K): LifecycleChannel<K> {
    // The set `on` adds to: a listener subscribed later is reached too.
    const set = this.#set(event);
    const deliver = (payload: LifecycleEvents[K]) => this.#deliver(event, set, payload);
    return {
      get listening() {
        return set.size > 0;
      },
      emit: deliver,
    };
  }

  #set(event: LifecycleName): Set<Listener<any>> {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    return set;
  }

  #deliver<K extends LifecycleName>(event: K, set: Set<Listener<K>>, payload: LifecycleEvents[K]): void {
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
