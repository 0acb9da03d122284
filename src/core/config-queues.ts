/**
 * The `queues.<name>` part of the config file: depth limit and lease order
 * (weights, age unit, fairness; docs/configuration.md "Flow control"). Kept
 * apart from config-schema.ts so each flow-control feature adds its keys here.
 */
import type { z as Zod } from 'zod';
import { DEFAULT_AGE_UNIT_MS, queuePolicy, type QueuePolicy } from './queue-policy.js';
import { zod } from './zod.js';

/** How far `weights.priority + weights.age` may be from 1 (floating-point sums such as 0.7 + 0.3). */
const WEIGHT_SUM_TOLERANCE = 1e-9;

const UNIT_EXPECTED = 'expected a number from 0 to 1';
const unit = () => zod().number({ error: UNIT_EXPECTED }).min(0, { error: UNIT_EXPECTED }).max(1, { error: UNIT_EXPECTED });
const AGE_UNIT_EXPECTED = 'expected an integer ≥ 1 (milliseconds)';
/** Lease caps: any sane cap is far below this; larger is a typo (and would not fit the counts' columns). */
export const MAX_LEASE_CAP = 1_000_000;
const LEASE_CAP_EXPECTED = `expected an integer from 1 to ${MAX_LEASE_CAP}`;

function weightsSchema() {
  return zod()
    .strictObject(
      { priority: unit(), age: unit() },
      { error: (issue) => (issue.code === 'unrecognized_keys' ? 'allowed keys: priority, age' : 'expected an object { priority, age }') },
    )
    .refine((w) => Math.abs(w.priority + w.age - 1) <= WEIGHT_SUM_TOLERANCE, {
      error: 'expected priority + age = 1 (e.g. { priority: 0.6, age: 0.4 }; { priority: 1, age: 0 } is strict priority)',
    });
}

/**
 * One queue's options.
 *
 * @example
 * queueSchema().parse({ maxDepth: 10_000, weights: { priority: 0.6, age: 0.4 }, fairness: 'tenant' });
 */
export function queueSchema() {
  const z = zod();
  return z.strictObject(
    {
      maxDepth: z.number({ error: 'expected an integer ≥ 1' }).int({ error: 'expected an integer ≥ 1' }).min(1, { error: 'expected an integer ≥ 1' }).optional(),
      weights: weightsSchema().optional(),
      ageUnitMs: z.number({ error: AGE_UNIT_EXPECTED }).int({ error: AGE_UNIT_EXPECTED }).min(1, { error: AGE_UNIT_EXPECTED }).optional(),
      fairness: z.enum(['none', 'tenant'], { error: 'expected one of "none", "tenant"' }).optional(),
      // Tenant lease caps (docs/configuration.md "Tenant caps"): resolved with the other caps in config-resolve.ts `resolveFlow`.
      tenantMaxActiveLeases: z
        .number({ error: LEASE_CAP_EXPECTED })
        .int({ error: LEASE_CAP_EXPECTED })
        .min(1, { error: LEASE_CAP_EXPECTED })
        .max(MAX_LEASE_CAP, { error: LEASE_CAP_EXPECTED })
        .optional(),
    },
    {
      error: (issue) =>
        issue.code === 'unrecognized_keys'
          ? 'allowed keys: maxDepth, weights, ageUnitMs, fairness, tenantMaxActiveLeases'
          : 'expected an object { maxDepth, weights, ageUnitMs, fairness, tenantMaxActiveLeases }',
    },
  );
}

export type ParsedQueue = Zod.infer<ReturnType<typeof queueSchema>>;

/**
 * A parsed queue entry (or none) with every default applied.
 *
 * @example
 * resolveQueue({ weights: { priority: 0.6, age: 0.4 } }, 100_000).priorityMs; // 1500
 * resolveQueue(undefined, 100_000).fairness; // 'none'
 */
export function resolveQueue(def: ParsedQueue | undefined, defaultMaxDepth: number): QueuePolicy {
  return queuePolicy({
    maxDepth: def?.maxDepth ?? defaultMaxDepth,
    ...(def?.weights ? { weights: { priority: def.weights.priority, age: def.weights.age } } : {}),
    ageUnitMs: def?.ageUnitMs ?? DEFAULT_AGE_UNIT_MS,
    fairness: def?.fairness ?? 'none',
  });
}
