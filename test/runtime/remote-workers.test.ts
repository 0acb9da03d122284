/**
 * The runtime's side of remote workers and operator actions, without HTTP:
 * a remote failure draws its retry jitter from the runtime's injected random,
 * as an in-process one does (it used Math.random), and cancel and retry keep
 * their rules and emit their events from the runtime.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/core/config.js';
import { DroverError } from '../../src/core/errors.js';
import type { DroverConfig } from '../../src/core/handler.js';
import type { LeaseClient } from '../../src/runtime/remote-workers.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { AuditTrail } from '../../src/ops/audit/audit-trail.js';
import { ephemeralNodeKey } from '../../src/ops/audit/node-key.js';
import { openStore } from '../../src/store/open.js';
import { closeRuntimesAfterEach } from '../helpers/runtimes.js';
import { waitFor } from '../helpers/wait-for.js';

const now = Date.parse('2026-01-01T00:00:00Z');
const open = closeRuntimesAfterEach();

async function startRuntime(handlers: DroverConfig['handlers'], random: () => number): Promise<Runtime> {
  const dir = mkdtempSync(join(tmpdir(), 'drover-remote-'));
  const config = resolveConfig({ databaseUrl: join(dir, 'drover.db'), handlers }, {});
  const store = await openStore(config.databaseUrl, { clock: () => now });
  await store.migrate();
  const audit = new AuditTrail({ store, key: ephemeralNodeKey(), clock: () => now });
  const runtime = new Runtime({ config, store, logger: pino({ level: 'silent' }), workerId: 'node-a', clock: () => now, random, audit });
  open.push({ runtime, store, dir });
  await runtime.start();
  return runtime;
}

/** A client that stays connected. */
const connected: LeaseClient = { onClose: () => () => undefined, gone: () => false };

const retry = { maxAttempts: 3, backoff: { initialMs: 60_000, maxMs: 600_000, factor: 2, jitter: 'full' as const } };

describe('remote workers in the runtime', () => {
  it('draws a remote failure’s retry jitter from the injected random, like an in-process one', async () => {
    const runtime = await startRuntime(
      [
        { name: 'near', retry, run: async () => { throw new Error('boom'); } },
        { name: 'far', remote: true, retry },
      ],
      () => 0.25,
    );
    const [near, far] = await runtime.enqueueJobs([{ handler: 'near', payload: {} }, { handler: 'far', payload: {} }]);
    const { jobs } = await runtime.remoteWorkers.lease({ handlers: ['far'], keyId: null, requestId: 'req-1' }, connected);
    expect(jobs?.map((j) => j.id)).toEqual([far!.job.id]);
    const failed = await runtime.remoteWorkers.fail({ jobId: far!.job.id, token: jobs![0]!.leaseToken, requestId: 'req-2', error: 'Error: boom', nonRetryable: false });
    // full jitter: floor(0.25 × 60 000)
    expect(failed.retryAt).toBe(now + 15_000);
    const local = await waitFor(async () => {
      const row = await runtime.store.getJob(near!.job.id);
      return row?.state === 'scheduled' ? row : null;
    });
    expect(local.runAt).toBe(now + 15_000);
    expect(failed.job.runAt).toBe(local.runAt);
  });

  it('hands back what it leased for a client that went away, unspent', async () => {
    const runtime = await startRuntime([{ name: 'far', remote: true }], Math.random);
    const [far] = await runtime.enqueueJobs([{ handler: 'far', payload: {} }]);
    const { jobs, gone } = await runtime.remoteWorkers.lease({ handlers: ['far'], keyId: null, requestId: 'req-1' }, { ...connected, gone: () => true });
    expect({ jobs, gone }).toEqual({ jobs: null, gone: true });
    expect(await runtime.store.getJob(far!.job.id)).toMatchObject({ state: 'queued', leaseToken: null });
  });

  it('refuses a settle the caller’s check rejects, changing nothing', async () => {
    const runtime = await startRuntime([{ name: 'far', remote: true }], Math.random);
    await runtime.enqueueJobs([{ handler: 'far', payload: {} }]);
    const { jobs } = await runtime.remoteWorkers.lease({ handlers: ['far'], keyId: null, requestId: 'req-1' }, connected);
    const job = jobs![0]!;
    const refuse = () => {
      throw new DroverError('handler_not_allowed', 'not yours');
    };
    await expect(runtime.remoteWorkers.complete({ jobId: job.id, token: job.leaseToken, requestId: 'r', result: 1, check: refuse })).rejects.toMatchObject({ code: 'handler_not_allowed' });
    await expect(runtime.remoteWorkers.fail({ jobId: job.id, token: job.leaseToken, requestId: 'r', error: 'x', nonRetryable: true, check: refuse })).rejects.toMatchObject({ code: 'handler_not_allowed' });
    expect(await runtime.store.getJob(job.id)).toMatchObject({ state: 'running', leaseToken: job.leaseToken });
  });
});

describe('operator actions in the runtime', () => {
  it('cancels an unfinished job and retries it, emitting job:cancelled and job:retried; refuses the wrong states', async () => {
    const runtime = await startRuntime([{ name: 'far', remote: true }], Math.random);
    const seen: string[] = [];
    runtime.lifecycle.on('job:cancelled', ({ job }) => seen.push(`cancelled:${job.state}`));
    runtime.lifecycle.on('job:retried', ({ job }) => seen.push(`retried:${job.state}`));
    const [far] = await runtime.enqueueJobs([{ handler: 'far', payload: {} }]);
    const id = far!.job.id;
    await expect(runtime.jobControl.retry(id)).rejects.toMatchObject({ code: 'invalid_state' });
    const cancelled = await runtime.jobControl.cancel(id);
    expect([cancelled.before.state, cancelled.job.state]).toEqual(['queued', 'cancelled']);
    await expect(runtime.jobControl.cancel(id)).rejects.toMatchObject({ code: 'invalid_state' });
    const retried = await runtime.jobControl.retry(id);
    expect([retried.before.state, retried.job.state]).toEqual(['cancelled', 'queued']);
    await expect(runtime.jobControl.cancel('no-such-job')).rejects.toMatchObject({ code: 'not_found' });
    expect(seen).toEqual(['cancelled:cancelled', 'retried:queued']);
  });
});
