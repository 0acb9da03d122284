/**
 * Node liveness for the SQLite engine. The pidfile lock makes one process the
 * store's only owner, so the registry lives in that process's memory: it
 * exists so the runtime drives every engine the same way (and the conformance
 * suite can test the contract), not because a second node could be seen.
 */
import type { NodeHeartbeat, NodeRegistration, NodeRow } from '../engine.js';

export class NodeRegistry {
  readonly #nodes = new Map<string, NodeRow>();

  register(node: NodeRegistration, now: number): void {
    this.#nodes.set(node.nodeId, { nodeId: node.nodeId, incarnation: node.incarnation, startedAt: now, heartbeatAt: now });
  }

  heartbeat(node: NodeRegistration, now: number): NodeHeartbeat {
    const row = this.#nodes.get(node.nodeId);
    if (!row) return 'unknown';
    if (row.incarnation !== node.incarnation) return 'superseded';
    row.heartbeatAt = now;
    return 'ok';
  }

  /** Nodes whose last heartbeat is before `cutoff`, except `except`. */
  stale(cutoff: number, except: string | undefined): Array<{ nodeId: string; heartbeatAt: number }> {
    return [...this.#nodes.values()].filter((n) => n.heartbeatAt < cutoff && n.nodeId !== except).map(({ nodeId, heartbeatAt }) => ({ nodeId, heartbeatAt }));
  }

  /** Forget nodes declared dead (called once their jobs are reclaimed). */
  remove(nodeIds: readonly string[]): void {
    for (const id of nodeIds) this.#nodes.delete(id);
  }

  deregister(node: NodeRegistration): void {
    if (this.#nodes.get(node.nodeId)?.incarnation === node.incarnation) this.#nodes.delete(node.nodeId);
  }

  list(): NodeRow[] {
    return [...this.#nodes.values()].map((n) => ({ ...n })).sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
  }
}
