/** `drover_feature_gate{gate}`: 1 when the gate is on for this node, read at scrape time. */
import { Gauge, type Registry } from 'prom-client';
import type { GateState } from '../core/rollout.js';

/**
 * @example
 * observeGates(metrics.registry, () => runtime.gates.list());
 */
export function observeGates(registry: Registry, gates: () => readonly GateState[]): Gauge<'gate'> {
  return new Gauge({
    name: 'drover_feature_gate',
    help: 'Feature gates as this node applies them: 1 on, 0 off (rollout.featureGates, with operator overrides).',
    labelNames: ['gate'],
    registers: [registry],
    collect() {
      this.reset();
      for (const gate of gates()) this.set({ gate: gate.name }, gate.enabled ? 1 : 0);
    },
  });
}
