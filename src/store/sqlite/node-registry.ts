/**
 * Node liveness for the SQLite engine (its `NodeRegistry` role). The pidfile
 * lock makes one process the store's only owner, so the registry lives in that
 * process's memory: it exists so the runtime drives every engine the same way
 * (and the conformance suite can test the contract), not because a second
 * node could be seen. Only reclaiming a dead node's leases writes.
 */
import type { DeadNodeRequest, DeadNodeResult, NodeHeartbeat, NodeRegistration, NodeRegistry, NodeRow } from '../engine.js';
import { forgetLeases, type EngineCore, type RolePart } from './engine-core.js';
import { reclaimStaleNodes } from './reclaim.js';

export class SqliteNodeRegistry implements RolePart<NodeRegistry> {
  readonly #core: EngineCore;
  readonly #nodes = new Map<string, NodeRow>();

  constructor(core: EngineCore) {
    this.#core = core;
  }

  async registerNode(node: NodeRegistration): Promise<void> {
    this.#core.assertOpen();
    const now = this.#core.clock();
    this.#nodes.set(node.nodeId, { nodeId: node.nodeId, incarnation: node.incarnation, startedAt: now, heartbeatAt: now });
  }

  async heartbeatNode(node: NodeRegistration): Promise<NodeHeartbeat> {
    this.#core.assertOpen();
    const now = this.#core.clock();
    const row = this.#nodes.get(node.nodeId);
    if (!row) return 'unknown';
    if (row.incarnation !== node.incarnation) return 'superseded';
    row.heartbeatAt = now;
    return 'ok';
  }

  async reclaimDeadNodes(request: DeadNodeRequest): Promise<DeadNodeResult> {
    const core = this.#core;
    const stale = this.#stale(core.clock() - request.staleAfterMs, request.exceptNodeId);
    const nodes = stale.map((node) => node.nodeId);
    if (nodes.length === 0) return { nodes, jobs: [] };
    const jobs = await core.write((own) => forgetLeases(core.memo, reclaimStaleNodes(core.prepared.s.fixed, stale, request, core.clock(), own)));
    // Forgotten once their jobs are reclaimed.
    for (const id of nodes) this.#nodes.delete(id);
    return { nodes, jobs };
  }

  async deregisterNode(node: NodeRegistration): Promise<void> {
    if (this.#nodes.get(node.nodeId)?.incarnation === node.incarnation) this.#nodes.delete(node.nodeId);
  }

  async listNodes(): Promise<NodeRow[]> {
    return [...this.#nodes.values()].map((n) => ({ ...n })).sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
  }

  /** Nodes whose last heartbeat is before `cutoff`, except `except`. */
  #stale(cutoff: number, except: string | undefined): Array<{ nodeId: string; heartbeatAt: number }> {
    return [...this.#nodes.values()].filter((n) => n.heartbeatAt < cutoff && n.nodeId !== except).map(({ nodeId, heartbeatAt }) => ({ nodeId, heartbeatAt }));
  }
}
