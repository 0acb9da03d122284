/**
 * Node liveness on a shared store: each node registers itself, heartbeats
 * once per `heartbeatMs` (one small write per node, never per job), and on
 * the same tick requeues the running jobs of any node silent for longer than
 * `deadNodeMs`. With the defaults (1 s, 3 s) a job held by a node that was
 * SIGKILLed, lost power or froze runs again within about 4 s, instead of
 * waiting for its lease (handler timeout + 30 s) to expire.
 *
 * A node that was declared dead but is alive after all (it froze, or its
 * database connection did) learns so from its next heartbeat, registers
 * again and carries on; the jobs it was running were taken from it, and their
 * lease tokens fence out its late completions. A node whose id another
 * process registered since (`superseded`) stops its runtime.
 *
 * On a shared store this also runs the fallback poll: NOTIFY wakeups can be
 * lost (listener reconnecting), and a delayed job enqueued on a node that then
 * died is known to no other node's due timer.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../obs/logger.js';
import type { LifecycleEvents } from '../core/lifecycle-events.js';
import type { NodeRegistration, NodeRegistry, ReclaimedJob } from '../store/engine.js';
import { BackgroundTask } from './background-task.js';
import type { Lifecycle } from './lifecycle.js';

export interface NodeLivenessOptions {
  store: NodeRegistry;
  nodeId: string;
  clock: () => number;
  logger: Logger;
  lifecycle: Lifecycle;
  heartbeatMs: number;
  deadNodeMs: number;
  poisonAfter: number;
  /** Another process registered this node id since: this one must stop working. */
  onSuperseded: () => void;
  /** Stage due jobs and look for work (shared stores only). */
  poll: () => Promise<void>;
  pollMs?: number;
  onError: (task: string) => (error: Error) => void;
}

export class NodeLiveness {
  readonly node: NodeRegistration;
  /** Since when this node's own heartbeats have succeeded without a gap; null after a failure. */
  #healthySince: number | null = null;

  constructor(private readonly options: NodeLivenessOptions) {
    this.node = { nodeId: options.nodeId, incarnation: randomUUID() };
  }

  /** The heartbeat task, and on a shared store the fallback poll. */
  tasks(): BackgroundTask[] {
    const { options } = this;
    const tasks = [new BackgroundTask({ name: 'heartbeat', intervalMs: options.heartbeatMs, run: () => this.#beat(), onError: options.onError('heartbeat') })];
    if (options.store.capabilities.multiNode) {
      tasks.push(new BackgroundTask({ name: 'poll', intervalMs: options.pollMs ?? 2_000, run: options.poll, onError: options.onError('poll') }));
    }
    return tasks;
  }

  async register(): Promise<void> {
    await this.options.store.registerNode(this.node);
    this.#healthySince = this.options.clock();
  }

  /** After the node's leases are released: peers need not wait for it to go stale. */
  async deregister(): Promise<void> {
    await this.options.store.deregisterNode(this.node);
  }

  async #beat(): Promise<void> {
    const { store, logger, lifecycle, clock, nodeId, deadNodeMs } = { ...this.options, nodeId: this.node.nodeId };
    let beat;
    try {
      beat = await store.heartbeatNode(this.node);
    } catch (error) {
      this.#healthySince = null;
      throw error;
    }
    if (beat === 'superseded') {
      logger.error({ worker_id: nodeId }, 'another process registered this node id (DROVER_NODE_ID) since this one started; this process stops working');
      this.options.onSuperseded();
      return;
    }
    if (beat === 'unknown') {
      logger.warn({ worker_id: nodeId }, 'peers declared this node dead (no heartbeat in time) and requeued its jobs; registering again');
      await store.registerNode(this.node);
    }
    const now = clock();
    this.#healthySince ??= now;
    // Only a node that has itself heartbeated through a whole window judges
    // others: after a database outage every row is stale, and the first node
    // back must not declare all the others dead.
    if (now - this.#healthySince < deadNodeMs) return;
    const { nodes, jobs } = await store.reclaimDeadNodes({ staleAfterMs: deadNodeMs, exceptNodeId: nodeId, poisonAfter: this.options.poisonAfter });
    if (nodes.length > 0) logger.warn({ nodes, jobs: jobs.length }, 'nodes stopped heartbeating; their running jobs were requeued');
    for (const job of jobs) lifecycle.emit('lease:expired', leaseExpired(job, 'node'));
  }
}

/** The `lease:expired` payload for a job the reaper (`lease`) or the dead-node reclaim (`node`) took back. */
export function leaseExpired(job: ReclaimedJob, cause: 'lease' | 'node'): LifecycleEvents['lease:expired'] {
  const payload: LifecycleEvents['lease:expired'] = { jobId: job.id, handler: job.handler, queue: job.queue, state: job.state, cause };
  if (job.expiredAt !== undefined) payload.expiredAt = job.expiredAt;
  return payload;
}
