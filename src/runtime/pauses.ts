/**
 * Which handlers and queues an operator has paused. Paused means "lease
 * nothing": intake still accepts and queues work, running jobs finish, and the
 * dispatcher and remote workers leave the rest alone until resumed.
 *
 * The state is persisted as node metadata (`handler_paused:<name>`,
 * `queue_paused:<name>` = `1` or `0`) so it survives a restart without a
 * change to the storage interface. Only configured names can be paused, so
 * loading is one read per handler and queue. When several nodes share the
 * store, each re-reads the flags every `refreshMs`: a pause made on one node
 * reaches the others within that interval.
 */
import { DroverError, toError } from '../core/errors.js';
import type { ResolvedConfig } from '../core/config.js';
import type { MetaStore } from '../store/engine.js';
import type { Lifecycle } from './lifecycle.js';

export interface PauseStateOptions {
  store: MetaStore;
  config: Pick<ResolvedConfig, 'handlers' | 'queues'>;
  lifecycle: Lifecycle;
  /** Called after a resume, so whoever leases looks again at once. */
  onResume: () => void;
  /** Re-read interval when the store is shared by several nodes. Default 5 s. */
  refreshMs?: number;
}

const handlerKey = (name: string) => `handler_paused:${name}`;
const queueKey = (name: string) => `queue_paused:${name}`;

export class PauseState {
  readonly #handlers = new Set<string>();
  readonly #queues = new Set<string>();
  /** `#queues` as the array `pausedQueues` hands out; null when the set changed since. */
  #queueList: readonly string[] | null = null;
  #timer: NodeJS.Timeout | null = null;

  constructor(private readonly options: PauseStateOptions) {}

  /** Read the persisted flags; when the store is shared, keep re-reading them. */
  async start(): Promise<void> {
    await this.refresh();
    if (this.options.store.capabilities.multiNode && this.#timer === null) {
      this.#timer = setInterval(() => {
        this.refresh().catch((error: unknown) => this.options.lifecycle.emit('task:failed', { task: 'pause-refresh', error: toError(error) }));
      }, this.options.refreshMs ?? 5_000);
      this.#timer.unref();
    }
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  async refresh(): Promise<void> {
    const { store, config } = this.options;
    let resumed = false;
    for (const name of config.handlers.keys()) resumed = apply(this.#handlers, name, (await store.getMeta(handlerKey(name))) === '1') || resumed;
    for (const name of config.queues.keys()) {
      resumed = apply(this.#queues, name, (await store.getMeta(queueKey(name))) === '1') || resumed;
      this.#queueList = null;
    }
    if (resumed) this.options.onResume();
  }

  isHandlerPaused(name: string): boolean {
    return this.#handlers.has(name);
  }

  isQueuePaused(name: string): boolean {
    return this.#queues.has(name);
  }

  /** Paused queue names, for a lease's `excludeQueues`. One array until the set changes: the dispatcher asks once per started job. */
  pausedQueues(): readonly string[] {
    this.#queueList ??= Object.freeze([...this.#queues]);
    return this.#queueList;
  }

  /** Pause, resume or reset (clear the pause of) a configured handler; throws `not_found` for any other name. */
  async setHandler(name: string, action: 'pause' | 'resume' | 'reset'): Promise<void> {
    const handler = this.options.config.handlers.get(name);
    if (!handler) {
      throw new DroverError('not_found', `no handler named "${name}"; configured: ${[...this.options.config.handlers.keys()].join(', ') || '(none)'}`);
    }
    const paused = action === 'pause';
    await this.options.store.setMeta(handlerKey(name), paused ? '1' : '0');
    const resumed = apply(this.#handlers, name, paused);
    this.options.lifecycle.emit('handler:changed', { handler: name, queue: handler.queue, paused, action });
    if (resumed) this.options.onResume();
  }

  /** Pause or resume a configured queue; throws `not_found` for any other name. */
  async setQueue(name: string, action: 'pause' | 'resume'): Promise<void> {
    if (!this.options.config.queues.has(name)) {
      throw new DroverError('not_found', `no queue named "${name}"; configured: ${[...this.options.config.queues.keys()].join(', ')}`);
    }
    const paused = action === 'pause';
    await this.options.store.setMeta(queueKey(name), paused ? '1' : '0');
    const resumed = apply(this.#queues, name, paused);
    this.#queueList = null;
    this.options.lifecycle.emit('queue:changed', { queue: name, paused, action });
    if (resumed) this.options.onResume();
  }
}

/** Set membership; true when this un-paused something. */
function apply(set: Set<string>, name: string, paused: boolean): boolean {
  if (paused) {
    set.add(name);
    return false;
  }
  return set.delete(name);
}
