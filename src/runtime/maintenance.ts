/**
 * The node's periodic upkeep beside dispatching, each a BackgroundTask: the
 * lease reaper, the retention pruner, and liveness on the store (registration,
 * heartbeat with dead-node reclaim, and the fallback poll: node-liveness.ts).
 * The runtime registers the node, starts these once it runs, and stops them
 * when it closes.
 */
import type { ResolvedConfig } from '../core/config.js';
import type { Logger } from '../obs/logger.js';
import type { StorageEngine } from '../store/engine.js';
import { BackgroundTask } from './background-task.js';
import type { Lifecycle } from './lifecycle.js';
import { leaseExpired, NodeLiveness } from './node-liveness.js';

/** The tasks operators and tests may run now (`Runtime.runTask`). */
export type MaintenanceTask = 'reaper' | 'pruner' | 'heartbeat' | 'poll';

export interface MaintenanceOptions {
  store: StorageEngine;
  lifecycle: Lifecycle;
  logger: Logger;
  nodeId: string;
  clock: () => number;
  config: Pick<ResolvedConfig, 'cluster' | 'retention' | 'poisonAfter'>;
  /** Lease expiry sweep interval (see RuntimeOptions.reapIntervalMs). */
  reapIntervalMs: number;
  /** False once the node drains: a prune in progress stops between batches. */
  isRunning: () => boolean;
  /** Another process registered this node id since: the runtime must stop. */
  onSuperseded: () => void;
  /** Stage due jobs and look for work (the fallback poll, shared stores only). */
  poll: () => Promise<void>;
  onError: (task: string) => (error: Error) => void;
}

/**
 * @example
 * const maintenance = new Maintenance({ store, lifecycle, logger, nodeId, clock, config, reapIntervalMs: 1_000, isRunning, onSuperseded, poll, onError });
 * await maintenance.register();
 * maintenance.start();
 * await maintenance.run('reaper');
 */
export class Maintenance {
  readonly #liveness: NodeLiveness;
  readonly #tasks: BackgroundTask[];

  constructor(options: MaintenanceOptions) {
    const { store, lifecycle, clock, config } = options;
    const reclaim = { poisonAfter: config.poisonAfter };
    this.#liveness = new NodeLiveness({
      store,
      nodeId: options.nodeId,
      clock,
      logger: options.logger,
      lifecycle,
      ...config.cluster,
      poisonAfter: config.poisonAfter,
      onSuperseded: options.onSuperseded,
      poll: options.poll,
      onError: options.onError,
    });
    const retention = config.retention;
    this.#tasks = [
      new BackgroundTask({
        name: 'reaper',
        intervalMs: options.reapIntervalMs,
        run: async () => {
          const reaped = await store.reapExpired(reclaim);
          for (const job of reaped) lifecycle.emit('lease:expired', leaseExpired(job, 'lease'));
        },
        onError: options.onError('reaper'),
      }),
      new BackgroundTask({
        name: 'pruner',
        intervalMs: retention.intervalMs,
        run: async () => {
          const startedAt = clock();
          const pruned = { jobs: 0, events: 0 };
          // Bounded batches: never hold the write lock long, stop when a batch comes back short.
          for (let round = 0; round < 100 && options.isRunning(); round++) {
            const now = clock();
            const deleted = await store.prune({
              finishedBefore: now - retention.succeededMs,
              deadBefore: now - retention.deadMs,
              eventsBefore: now - retention.eventsMs,
              batchSize: retention.batchSize,
            });
            pruned.jobs += deleted.jobs;
            pruned.events += deleted.events;
            if (deleted.jobs < retention.batchSize && deleted.events < retention.batchSize) break;
          }
          const at = clock();
          lifecycle.emit('retention:pruned', { ...pruned, durationMs: at - startedAt, at });
        },
        onError: options.onError('pruner'),
      }),
      ...this.#liveness.tasks(),
    ];
  }

  /** Register this node with the store (before it reclaims its own leases). */
  register(): Promise<void> {
    return this.#liveness.register();
  }

  start(): void {
    for (const task of this.#tasks) task.start();
  }

  /** Stop every task, waiting for the runs in progress. */
  async stop(): Promise<void> {
    await Promise.all(this.#tasks.map((task) => task.stop()));
  }

  /** After the node's leases are released: peers need not wait for it to go stale. */
  deregister(): Promise<void> {
    return this.#liveness.deregister();
  }

  /** Run a task now instead of waiting for its interval. */
  async run(name: MaintenanceTask): Promise<void> {
    const task = this.#tasks.find((t) => t.name === name);
    if (!task) throw new Error(`no background task named ${name}`);
    await task.trigger();
  }
}
