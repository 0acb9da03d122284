/**
 * Lease-cap configuration (`flow`, `queues.<q>.tenantMaxActiveLeases`):
 * resolved values, strict validation with messages that name the key, and
 * the pure rules the store applies (core/lease-caps.ts).
 */
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/core/config.js';
import type { DroverError } from '../../src/core/errors.js';
import { NO_TENANT_CAPS, TenantTally, tenantCapsIfAny, workerCapsFor, roomUnderWorkerCaps, emptyCapReport } from '../../src/core/lease-caps.js';

const handlers = [{ name: 'h', queue: 'billing', run: async () => undefined }];

function problems(raw: Record<string, unknown>): string[] {
  try {
    resolveConfig({ handlers, ...raw }, {});
    return [];
  } catch (error) {
    return ((error as DroverError).extensions.errors as Array<{ path: string; message: string }>).map((i) => `${i.path}: ${i.message}`);
  }
}

describe('flow config', () => {
  it('resolves to no caps by default: the store keeps its fast path', () => {
    const { flow } = resolveConfig({ handlers }, {});
    expect(flow.tenants).toEqual({ maxActiveLeases: null, overrides: new Map(), perQueue: new Map() });
    expect(flow.workers).toEqual({ maxActiveLeases: null, keyMaxActiveLeases: null, keys: new Map() });
    expect(tenantCapsIfAny(flow.tenants)).toBeUndefined();
  });

  it('resolves tenant caps, overrides, per-queue caps and worker caps', () => {
    const { flow } = resolveConfig(
      {
        handlers,
        queues: { billing: { maxDepth: 10, tenantMaxActiveLeases: 2 } },
        flow: {
          tenants: { maxActiveLeases: 20, overrides: { acme: 100, 'paused-tenant': 0 } },
          workers: { maxActiveLeases: 8, keyMaxActiveLeases: 32, keys: { batch: { maxActiveLeases: 64 }, key_0123: { maxWorkerLeases: 1 } } },
        },
      },
      {},
    );
    expect(flow.tenants).toEqual({ maxActiveLeases: 20, overrides: new Map([['acme', 100], ['paused-tenant', 0]]), perQueue: new Map([['billing', 2]]) });
    expect(flow.workers.maxActiveLeases).toBe(8);
    expect(flow.workers.keys.get('batch')).toEqual({ maxActiveLeases: 64, maxWorkerLeases: null });
    // A per-queue cap alone is enough to turn tenant caps on.
    expect(tenantCapsIfAny({ ...NO_TENANT_CAPS, perQueue: new Map([['billing', 2]]) })).toBeDefined();
  });

  it('refuses bad caps with the key path and what was expected', () => {
    expect(problems({ flow: { tenants: { maxActiveLeases: 0 } } })).toEqual(['flow.tenants.maxActiveLeases: expected an integer from 1 to 1000000, got 0']);
    expect(problems({ flow: { tenants: { maxActiveLeases: 2.5 } } })).toEqual(['flow.tenants.maxActiveLeases: expected an integer from 1 to 1000000, got 2.5']);
    expect(problems({ flow: { tenants: { overrides: { acme: -1 } } } })).toEqual(['flow.tenants.overrides.acme: expected an integer from 0 to 1000000, got -1']);
    expect(problems({ flow: { tenants: { overrides: [] } } })).toEqual(['flow.tenants.overrides: expected an object mapping tenant names to their cap, e.g. { "acme": 50 }, got []']);
    expect(problems({ flow: { tenants: { max: 3 } } })).toEqual(['flow.tenants.max: unknown key; allowed keys: maxActiveLeases, overrides']);
    expect(problems({ flow: { workers: { maxActiveLeases: '4' } } })).toEqual(['flow.workers.maxActiveLeases: expected an integer from 1 to 1000000, got "4"']);
    expect(problems({ flow: { workers: { keys: { batch: { max: 1 } } } } })).toEqual(['flow.workers.keys.batch.max: unknown key; allowed keys: maxActiveLeases, maxWorkerLeases']);
    expect(problems({ flow: { fairness: true } })).toEqual(['flow.fairness: unknown key; allowed keys: tenants, workers']);
    expect(problems({ queues: { billing: { tenantMaxActiveLeases: 0 } } })).toEqual(['queues.billing.tenantMaxActiveLeases: expected an integer from 1 to 1000000, got 0']);
  });
});

describe('lease-cap rules', () => {
  it('a tally admits a tenant up to its cap (override first), and per queue up to the queue cap', () => {
    const tally = new TenantTally({ maxActiveLeases: 2, overrides: new Map([['vip', 3]]), perQueue: new Map([['narrow', 1]]) });
    tally.load('a', [['wide', 1]]);
    expect(tally.fits('a', 'wide')).toBe(true);
    tally.take('a', 'wide');
    expect(tally.fits('a', 'wide')).toBe(false);
    expect(tally.full('a')).toBe(true);
    tally.load('vip', []);
    expect(tally.fits('vip', 'narrow')).toBe(true);
    tally.take('vip', 'narrow');
    expect(tally.fits('vip', 'narrow')).toBe(false);
    expect(tally.fits('vip', 'wide')).toBe(true);
    expect(tally.full('vip')).toBe(false);
  });

  it('worker caps: a key\'s own entry (by id, then name) wins over the defaults; no key, no key cap', () => {
    const workers = { maxActiveLeases: 4, keyMaxActiveLeases: 16, keys: new Map([['bulk', { maxActiveLeases: 64, maxWorkerLeases: null }], ['key_1', { maxActiveLeases: null, maxWorkerLeases: 1 }]]) };
    expect(workerCapsFor(workers, { id: 'key_9', name: 'bulk' })).toEqual({ worker: 4, key: 64 });
    expect(workerCapsFor(workers, { id: 'key_1', name: 'bulk' })).toEqual({ worker: 1, key: 16 });
    expect(workerCapsFor(workers, null)).toEqual({ worker: 4 });
    const report = emptyCapReport();
    expect(roomUnderWorkerCaps(5, { worker: 4, key: 16 }, { worker: 1, key: 15 }, report)).toBe(1);
    expect(report).toMatchObject({ worker: true, key: true });
  });
});
