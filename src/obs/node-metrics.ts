/**
 * Node liveness as metrics: `drover_nodes_alive` (nodes whose heartbeat is
 * fresher than `cluster.deadNodeMs`, read from the store's node table on
 * scrape, cached a second) and `drover_node_deaths_detected_total` (nodes this
 * node declared dead and whose running jobs it requeued). Every node reports
 * the same cluster-wide count: take `max`, not `sum`, across nodes.
 */
import { Gauge } from 'prom-client';
import type { NodeRow } from '../store/engine.js';
import { cachedRead } from './cached-read.js';
import type { DroverMetrics } from './metrics.js';
import type { CounterSeries } from './series.js';

export interface NodeMetricsSources {
  listNodes(): Promise<NodeRow[]>;
  deadNodeMs: number;
  clock(): number;
  onError(error: Error): void;
}

/**
 * @example
 * const nodes = observeNodes(metrics, { listNodes: () => store.listNodes(), deadNodeMs: config.cluster.deadNodeMs, clock, onError });
 * instrumentStore(engine, { timer, onResult: { reclaimDeadNodes: nodes.reclaimed } });
 */
export function observeNodes(metrics: DroverMetrics, sources: NodeMetricsSources): { reclaimed: (result: unknown) => void } {
  const nodes = cachedRead(() => sources.listNodes(), { maxAgeMs: 1_000, clock: sources.clock, onError: sources.onError });
  let last = 0;
  new Gauge({
    name: 'drover_nodes_alive',
    help: 'Nodes whose heartbeat is fresher than cluster.deadNodeMs (cluster-wide: every node reports the same count).',
    registers: [metrics.registry],
    async collect() {
      const rows = await nodes();
      const now = sources.clock();
      const alive = rows === null ? null : rows.filter((row) => now - row.heartbeatAt <= sources.deadNodeMs).length;
      if (alive !== null) last = alive;
      this.set(last);
    },
  });
  const deaths: CounterSeries = metrics.counter('drover_node_deaths_detected_total', 'Nodes this node found silent for longer than cluster.deadNodeMs, declared dead and whose running jobs it requeued.', []).series();
  return {
    reclaimed: (result) => {
      const dead = (result as { nodes?: unknown } | null)?.nodes;
      if (Array.isArray(dead) && dead.length > 0) deaths.inc(dead.length);
    },
  };
}
