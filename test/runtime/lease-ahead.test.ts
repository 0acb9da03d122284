/**
 * The runtime's `leaseAhead` option (`drover start --low-memory` sets it to
 * LOW_MEMORY_LEASE_AHEAD): a quick handler leases at most its concurrency plus
 * that many jobs, instead of a window sized in time (runtime/lease-window.ts).
 * A leased job's row lives until it has run and settled; a short window keeps
 * fewer of them alive across scavenges (issue 24, worker RSS).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/core/config.js';
import { AuditTrail } from '../../src/ops/audit/audit-trail.js';
import { ephemeralNodeKey } from '../../src/ops/audit/node-key.js';
import { LOW_MEMORY_LEASE_AHEAD } from '../../src/runtime/lease-window.js';
import { Runtime } from '../../src/runtime/runtime.js';
import type { LeaseRequest } from '../../src/store/engine.js';
import { openStore } from '../../src/store/open.js';
import { closeRuntimesAfterEach } from '../helpers/runtimes.js';
import { waitFor } from '../helpers/wait-for.js';

const open = closeRuntimesAfterEach();

/** Drain `n` quick jobs at concurrency 2; the most jobs any one lease asked for. */
async function mostAsked(n: number, leaseAhead?: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'drover-lease-ahead-'));
  let ran = 0;
  const config = resolveConfig({ databaseUrl: join(dir, 'drover.db'), handlers: [{ name: 'h', concurrency: 2, run: () => void ran++ }] }, {});
  const store = await openStore(config.databaseUrl);
  await store.migrate();
  let most = 0;
  const lease = store.lease.bind(store);
  store.lease = (request: LeaseRequest) => {
    for (const ask of request.handlers) if (ask.name === 'h') most = Math.max(most, ask.max);
    return lease(request);
  };
  const audit = new AuditTrail({ store, key: ephemeralNodeKey() });
  const runtime = new Runtime({ config, store, logger: pino({ level: 'silent' }), workerId: 'node-a', audit, ...(leaseAhead === undefined ? {} : { leaseAhead }) });
  open.push({ runtime, store, dir });
  // Queued before the runtime starts, so the first leases find them all.
  await store.enqueue(Array.from({ length: n }, (_, i) => ({ handler: 'h', queue: 'default', payload: { i }, priority: 0, runAt: Date.now(), maxAttempts: 3 })));
  await runtime.start();
  await waitFor(() => ran === n || undefined, { timeoutMs: 10_000, message: `${n} jobs ran` });
  return most;
}

describe('runtime leaseAhead', () => {
  it('bounds what a quick handler leases ahead; without it the window is at least 64 jobs', async () => {
    expect(await mostAsked(300, 4)).toBeLessThanOrEqual(2 + 4);
    expect(await mostAsked(300)).toBeGreaterThanOrEqual(2 + 64);
    expect(LOW_MEMORY_LEASE_AHEAD).toBe(64);
  });
});
