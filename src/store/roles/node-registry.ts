/** Node heartbeats and the reclaim of dead nodes' jobs. */
import type { StoreRole } from './capabilities.js';
import type { ReclaimedJob, ReclaimOptions } from './job-store.js';

/** One running process of a node: `nodeId` is stable across restarts (it is the worker id), `incarnation` is new per process. */
export interface NodeRegistration {
  nodeId: string;
  incarnation: string;
}

export interface NodeRow extends NodeRegistration {
  startedAt: number;
  heartbeatAt: number;
}

/**
 * What a node's heartbeat found: `ok`; `unknown` when its row is gone (peers
 * declared it dead and reclaimed its jobs); `superseded` when another process
 * registered the same node id since.
 */
export type NodeHeartbeat = 'ok' | 'unknown' | 'superseded';

export interface DeadNodeRequest extends ReclaimOptions {
  /** A node whose last heartbeat is older than this is dead. */
  staleAfterMs: number;
  /** Never declare this node dead (the caller itself). */
  exceptNodeId?: string;
}

export interface DeadNodeResult {
  /** Node ids declared dead (their rows are deleted). */
  nodes: string[];
  /** Their running jobs, requeued (or poisoned) as `crashed`. */
  jobs: ReclaimedJob[];
}

export interface NodeRegistry extends StoreRole {
  /**
   * Record this process as the live incarnation of `nodeId` (replacing an
   * earlier one). Throws `config_invalid` when another live process holds the
   * same node id (engines that can tell).
   */
  registerNode(node: NodeRegistration): Promise<void>;
  /** One small write: this incarnation is alive. */
  heartbeatNode(node: NodeRegistration): Promise<NodeHeartbeat>;
  /** Declare nodes silent for `staleAfterMs` dead: delete them and requeue (or poison) their running jobs. */
  reclaimDeadNodes(request: DeadNodeRequest): Promise<DeadNodeResult>;
  /** Remove this incarnation's row (graceful shutdown, after its leases are released). */
  deregisterNode(node: NodeRegistration): Promise<void>;
  listNodes(): Promise<NodeRow[]>;
}
