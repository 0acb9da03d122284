/**
 * The node's feature gates, live: the config's values with the operator's
 * runtime overrides applied. Overrides are one JSON value in the store
 * (changed with a compare-and-set, `updateMeta`), so every node sharing the
 * store reads the same ones; each node reads them again every `refreshMs`
 * (default 2 s), which bounds how long a change takes to reach it. An
 * override outlives restarts on purpose: one node restarting must not flip a
 * gate the rest of the cluster still has; `reset` returns a gate to its
 * config value.
 */
import { DroverError, toError } from '../core/errors.js';
import { BUILTIN_GATES, parseOverrides, resolveGates, type FeatureFlags, type GateState } from '../core/rollout.js';
import type { MetaStore } from '../store/engine.js';

/** Store metadata key of the overrides (a JSON object of gate name → boolean). */
export const GATE_OVERRIDES_META = 'feature_gate_overrides';

export interface FeatureGatesOptions {
  store: MetaStore;
  /** The config's gates (built-ins not listed take their defaults). */
  configured: Readonly<Record<string, boolean>>;
  refreshMs?: number;
  /** A gate's value changed (an override set here or seen from another node). */
  onChange?(gate: GateState, before: boolean): void;
  onError?(error: Error): void;
}

export class FeatureGates implements FeatureFlags {
  #states = new Map<string, GateState>();
  #timer: NodeJS.Timeout | null = null;

  constructor(private readonly options: FeatureGatesOptions) {
    this.#apply({});
  }

  /** Read the overrides now, then every `refreshMs`. */
  async start(): Promise<void> {
    await this.refresh();
    this.#timer = setInterval(() => {
      this.refresh().catch((error: unknown) => this.options.onError?.(toError(error)));
    }, this.options.refreshMs ?? 2_000);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  enabled(name: string): boolean {
    return this.#states.get(name)?.enabled ?? false;
  }

  snapshot(): Record<string, boolean> {
    return Object.fromEntries([...this.#states.values()].map((g) => [g.name, g.enabled]));
  }

  list(): GateState[] {
    return [...this.#states.values()];
  }

  get(name: string): GateState | undefined {
    return this.#states.get(name);
  }

  async refresh(): Promise<void> {
    this.#apply(parseOverrides(await this.options.store.getMeta(GATE_OVERRIDES_META)));
  }

  /**
   * Override a gate on every node (`enabled`), or remove the override (`null`: back to the config value).
   * Only gates the config or Drover declares can be set: a typo must not create a gate nobody reads.
   */
  async set(name: string, enabled: boolean | null): Promise<{ before: GateState; after: GateState }> {
    const before = this.#states.get(name);
    if (!before) {
      throw new DroverError('not_found', `no feature gate "${name}"; gates are declared in the config (rollout.featureGates) or built in (${Object.keys(BUILTIN_GATES).join(', ')})`);
    }
    const stored = await this.options.store.updateMeta(GATE_OVERRIDES_META, (current) => {
      const overrides = parseOverrides(current);
      if (enabled === null) delete overrides[name];
      else overrides[name] = enabled;
      return JSON.stringify(overrides);
    });
    this.#apply(parseOverrides(stored));
    return { before, after: this.#states.get(name)! };
  }

  #apply(overrides: Record<string, boolean>): void {
    const previous = this.#states;
    this.#states = new Map(resolveGates(this.options.configured, overrides).map((g) => [g.name, g]));
    if (previous.size === 0) return;
    for (const gate of this.#states.values()) {
      const before = previous.get(gate.name);
      if (before && before.enabled !== gate.enabled) this.options.onChange?.(gate, before.enabled);
    }
  }
}
