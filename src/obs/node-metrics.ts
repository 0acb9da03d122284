/**
 * Node liveness as metrics: `drover_nodes_alive` (nodes whose heartbeat is
 * fresher than `cluster.deadNodeMs`, read from the store's node table on
 * scrape, cached a second) and `drover_node_deaths_detected_total` (nodes this
 * node declared dead and whose running jobs it requeued). Every node reports
 * the same cluster-wide count: take `max`, not `sum`, across nodes.
 */
import { Gauge } from 'prom-client';
import { toError } from '../core/errors.js';
import type { NodeRow } from '../store/engine.js';
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
  let cached: { at: number; alive: Promise<number | null> } | null = null;
  let last = 0;
  new Gauge({
    name: 'drover_nodes_alive',
    help: 'Nodes whose heartbeat is fresher than cluster.deadNodeMs (cluster-wide: every node reports the same count).',
    registers: [metrics.registry],
    async collect() {
      const now = sources.clock();
      if (!cached || now - cached.at >= 1_000) {
        cached = {
          at: now,
          alive: sources.listNodes().then(
            (rows) => rows.filter((row) => now - row.heartbeatAt <= sources.deadNodeMs).length,
            (error: unknown) => {
              sources.onError(toError(error));
              return null;
            },
          ),
        };
      }
      const alive = await cached.alive;
      if (alive !== null) last = alive;
      this.set(last);
    },
  });
  const deaths: CounterSeries = metrics.counter('drover_node_deaths_detected_total', 'Nodes this node found silent for longer than cluster.deadNodeMs, declared dead and whose running jobs it requeued.', []).series();
  return {
    reclaimed: (result) => {
      const nodes = (result as { nodes?: unknown } | null)?.nodes;
      if (Array.isArray(nodes) && nodes.length > 0) deaths.inc(nodes.length);
    },
  };
}
