/**
 * Release channel and feature gates: which promotion stage a node belongs to
 * (shown everywhere an operator looks), and named on/off switches for
 * Drover's own risky features and for the user's code (`ctx.features`).
 * A gate's value is its override if an operator set one at runtime (kept in
 * the store, so every node sharing it agrees), else the config's, else the
 * built-in default. Pure: the runtime keeps the overrides fresh.
 */

/** The promotion stages a channel may name, unless the config lists its own. */
export const DEFAULT_CHANNELS = ['development', 'staging', 'canary', 'production'] as const;
export const DEFAULT_CHANNEL = 'production';

/** Drover's own gated features: on unless a config or an operator turns them off. */
export const BUILTIN_GATES: Readonly<Record<string, { default: boolean; what: string }>> = {
  'durable-steps': { default: true, what: 'ctx.step: memoized steps, sleeps, waits for events and interrupts' },
  'remote-workers': { default: true, what: 'the lease protocol for remote workers (/v1/workers/*)' },
};

export const GATE_NAME_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;

export interface GateState {
  name: string;
  enabled: boolean;
  /** Where the value comes from. */
  source: 'builtin' | 'config' | 'override';
  /** The value without the override (what `reset` returns it to). */
  configured: boolean;
  builtin: boolean;
}

/**
 * Every known gate's state: built-ins, then the config's gates, each with an override applied when one is set.
 * Overrides for gates the config no longer names are ignored (and reported as unknown by `unknownOverrides`).
 *
 * @example
 * resolveGates({ 'new-pricing': false }, { 'new-pricing': true }).find((g) => g.name === 'new-pricing');
 * // { name: 'new-pricing', enabled: true, source: 'override', configured: false, builtin: false }
 */
export function resolveGates(configured: Readonly<Record<string, boolean>>, overrides: Readonly<Record<string, boolean>>): GateState[] {
  const names = [...new Set([...Object.keys(BUILTIN_GATES), ...Object.keys(configured)])].sort();
  return names.map((name) => {
    const builtin = name in BUILTIN_GATES;
    const fromConfig = configured[name];
    const base = fromConfig ?? BUILTIN_GATES[name]?.default ?? false;
    const override = overrides[name];
    return {
      name,
      enabled: override ?? base,
      source: override !== undefined ? 'override' : fromConfig !== undefined ? 'config' : 'builtin',
      configured: base,
      builtin,
    };
  });
}

/** Parse the stored overrides; anything unreadable counts as none (a gate never flips on garbage). */
export function parseOverrides(stored: string | null): Record<string, boolean> {
  if (!stored) return {};
  try {
    const parsed = JSON.parse(stored) as unknown;
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return {};
    return Object.fromEntries(Object.entries(parsed as Record<string, unknown>).filter(([name, v]) => GATE_NAME_RE.test(name) && typeof v === 'boolean')) as Record<string, boolean>;
  } catch {
    return {};
  }
}

/** What handlers read: `ctx.features.enabled('new-pricing')`. An unknown gate is off. */
export interface FeatureFlags {
  enabled(name: string): boolean;
  /** Every known gate's value now, as plain data (what a handler thread is given). */
  snapshot(): Record<string, boolean>;
}
