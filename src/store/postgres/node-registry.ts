/**
 * The engine's `NodeRegistry` role: one row per node in `nodes`, heartbeated
 * by the runtime; peers reclaim the jobs of a node whose row goes stale. A
 * session advisory lock on the node id (node-lock.ts, held on the LISTEN
 * connection) keeps two live processes from using the same id.
 */
import type { DeadNodeRequest, DeadNodeResult, NodeHeartbeat, NodeRegistration, NodeRegistry, NodeRow } from '../engine.js';
import { reclaimed, type EngineCore, type RolePart } from './engine-core.js';
import { acquireNodeLock, nodeLockKey } from './node-lock.js';
import * as q from './queries.js';
import * as reclaim from './reclaim.js';
import { toNodeRow, type RawNode } from './rows.js';

export class PostgresNodeRegistry implements RolePart<NodeRegistry> {
  readonly #core: EngineCore;

  constructor(core: EngineCore) {
    this.#core = core;
  }

  async registerNode(node: NodeRegistration): Promise<void> {
    const core = this.#core;
    await core.run('registering the node', () => acquireNodeLock(core.wakeups.notifier, core.schema, node.nodeId, core.nodeLockWaitMs));
    await core.query(q.REGISTER_NODE, [node.nodeId, node.incarnation, core.clock()]);
  }

  async heartbeatNode(node: NodeRegistration): Promise<NodeHeartbeat> {
    const rows = await this.#core.query<{ beat: number; current: string | null }>(q.HEARTBEAT_NODE, [node.nodeId, node.incarnation, this.#core.clock()]);
    const row = rows[0];
    if (row && row.beat > 0) return 'ok';
    return row?.current == null ? 'unknown' : 'superseded';
  }

  async reclaimDeadNodes(request: DeadNodeRequest): Promise<DeadNodeResult> {
    const core = this.#core;
    const now = core.clock();
    const result = await core.run('reclaiming dead nodes', () =>
      reclaim.reclaimDeadNodes(core.leasePool, now, request.poisonAfter, now - request.staleAfterMs, request.exceptNodeId ?? ''),
    );
    reclaimed(core, result.jobs);
    return result;
  }

  async deregisterNode(node: NodeRegistration): Promise<void> {
    await this.#core.query(q.DEREGISTER_NODE, [node.nodeId, node.incarnation]);
    await this.#core.wakeups.notifier.unlock(nodeLockKey(this.#core.schema, node.nodeId));
  }

  async listNodes(): Promise<NodeRow[]> {
    return (await this.#core.query<RawNode>(q.LIST_NODES, [])).map(toNodeRow);
  }
}
