/**
 * One path for every job transition: a failure reported by a remote worker
 * over HTTP and the same failure of an in-process handler leave the same job
 * row, the same attempt row and the same lifecycle events (names, payload
 * shapes and values), on both engines. Only what names the worker differs
 * (its id, the `remote` origin of the events).
 *
 * A remote worker cannot report a timeout (the protocol has no such field;
 * its expired lease is reaped as a crash), so timeouts are not compared.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DroverConfig } from '../../src/core/handler.js';
import { NonRetryableError } from '../../src/core/errors.js';
import type { LifecycleEvents, LifecycleName } from '../../src/runtime/lifecycle.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';

const PG_URL = process.env.DROVER_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const pgAdmin = new pg.Pool({ connectionString: PG_URL, max: 2 });
const schemas: string[] = [];
afterAll(async () => {
  for (const schema of schemas) await pgAdmin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await pgAdmin.end();
});

/** What each failure kind throws in-process, and reports over HTTP (the SDK sends the stack, `nonRetryable` for NonRetryableError). */
const STACKS = {
  retryable: 'Error: upstream said 503\n    at charge (billing.ts:12:7)',
  fatal: 'NonRetryableError: card declined\n    at charge (billing.ts:14:9)',
} as const;
type Kind = keyof typeof STACKS;

function thrown(kind: Kind): Error {
  const error = kind === 'fatal' ? new NonRetryableError('card declined') : new Error('upstream said 503');
  error.stack = STACKS[kind];
  return error;
}

const policy = { maxAttempts: 2, backoff: { initialMs: 60_000, maxMs: 600_000, factor: 2, jitter: 'none' as const } };

const engines = [
  { engine: 'sqlite', extra: (): Partial<DroverConfig> => ({}) },
  {
    engine: 'postgres',
    extra: (): Partial<DroverConfig> => {
      const schema = `drover_parity_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
      schemas.push(schema);
      return { databaseUrl: PG_URL, postgres: { schema, poolMax: 4 } } as Partial<DroverConfig>;
    },
  },
];

const WATCHED: LifecycleName[] = ['job:enqueued', 'job:start', 'job:succeeded', 'job:failed', 'job:released', 'job:stale'];

describe.each(engines)('remote and in-process failures ($engine)', ({ engine, extra }) => {
  let node: TestNode;
  // Frozen, so both paths decide at the same instant: retry times and durations compare exactly.
  const now = Date.parse('2026-01-01T00:00:00Z');
  const events: Array<{ name: LifecycleName; payload: any }> = [];

  beforeAll(async () => {
    if (engine === 'postgres') {
      try {
        await pgAdmin.query('SELECT 1');
      } catch (error) {
        throw new Error(`PostgreSQL is not reachable at ${PG_URL} (${(error as Error).message}); start it or set DROVER_TEST_PG_URL`);
      }
    }
    node = await startTestNode(
      {
        handlers: [
          { name: 'near', retry: policy, run: async (ctx) => { throw thrown((ctx.job.payload as { kind: Kind }).kind); } },
          { name: 'far', remote: true, retry: policy },
        ],
        rateLimit: { enabled: false },
        ...extra(),
      },
      { clock: () => now },
    );
    for (const name of WATCHED) node.runtime.lifecycle.on(name, (payload: LifecycleEvents[typeof name]) => events.push({ name, payload }));
  });
  afterEach(() => {
    events.length = 0;
  });
  afterAll(async () => {
    await node?.close();
  });

  async function enqueue(handler: string, kind: Kind, maxAttempts?: number): Promise<string> {
    const res = await node.request('POST', '/v1/jobs', { handler, payload: { kind }, ...(maxAttempts ? { maxAttempts } : {}) });
    expect(res.status).toBe(202);
    return res.body.id as string;
  }

  /** The in-process handler fails on its own; wait until that is recorded. */
  async function failNear(kind: Kind, maxAttempts?: number): Promise<string> {
    const id = await enqueue('near', kind, maxAttempts);
    await waitFor(() => events.some((e) => e.name === 'job:failed' && e.payload.job.id === id), { message: `in-process job ${id} failed` });
    return id;
  }

  /** Lease the remote job over HTTP and report the same failure. */
  async function failFar(kind: Kind, maxAttempts?: number): Promise<{ id: string; answer: any }> {
    const id = await enqueue('far', kind, maxAttempts);
    const leased = await node.request('POST', '/v1/workers/lease', { handlers: ['far'], max: 1, workerId: 'parity' });
    expect(leased.status).toBe(200);
    const [job] = leased.body.jobs;
    expect(job.id).toBe(id);
    const answer = await node.request('POST', '/v1/workers/fail', { jobId: id, token: job.leaseToken, error: STACKS[kind], ...(kind === 'fatal' ? { nonRetryable: true } : {}) });
    expect(answer.status).toBe(200);
    return { id, answer: answer.body };
  }

  /** A job's row, attempt rows and events without what names it, its handler or its worker. */
  async function trace(id: string) {
    const row = await node.store.getJob(id);
    const attempts = await node.store.getAttempts(id);
    const { id: _id, handler: _h, workerId: _w, leaseKeyId: _k, ...job } = row!;
    return {
      job,
      attempts: attempts.map(({ jobId: _j, workerId: _wa, ...rest }) => rest),
      events: events
        .filter((e) => (e.payload.job?.id ?? e.payload.jobId) === id)
        .map(({ name, payload }) => {
          const { remote: _r, job: leased, error, ...rest } = payload;
          const { id: _i, handler: _hh, workerId: _ww, leaseKeyId: _kk, leaseToken, leaseExpiresAt, ...jobFields } = leased;
          return {
            name,
            keys: Object.keys(payload).filter((k) => k !== 'remote').sort(),
            jobKeys: Object.keys(leased).sort(),
            job: { ...jobFields, leaseToken: typeof leaseToken, leaseExpiresAt: typeof leaseExpiresAt },
            ...rest,
            ...(error ? { error: { name: error.name, message: error.message, stack: error.stack, isError: error instanceof Error } } : {}),
          };
        }),
    };
  }

  function expectRemoteOrigin(id: string): void {
    for (const e of events.filter((e) => e.payload.job?.id === id && e.name !== 'job:enqueued')) {
      expect(e.payload.remote, e.name).toEqual({ requestId: expect.any(String), workerId: 'remote:parity' });
    }
  }

  it('a retryable error: scheduled for the same retry time, same attempt row, same events', async () => {
    const near = await failNear('retryable');
    const far = await failFar('retryable');
    const [a, b] = [await trace(near), await trace(far.id)];
    expect(a.job).toMatchObject({ state: 'scheduled', runAt: now + 60_000, attempts: 1, lastError: STACKS.retryable, deadReason: null });
    expect(a.events.map((e) => e.name)).toEqual(['job:enqueued', 'job:start', 'job:failed']);
    expect(a.events[2]).toMatchObject({ outcome: 'failed', retryAt: now + 60_000, deadReason: null, killed: false, error: { message: 'upstream said 503', stack: STACKS.retryable } });
    expect(b).toEqual(a);
    expect(far.answer).toMatchObject({ state: 'scheduled', retryAt: new Date(now + 60_000).toISOString() });
    expectRemoteOrigin(far.id);
  });

  it('a non-retryable error: dead at once (non_retryable), same rows and events', async () => {
    const near = await failNear('fatal');
    const far = await failFar('fatal');
    const [a, b] = [await trace(near), await trace(far.id)];
    expect(a.job).toMatchObject({ state: 'dead', deadReason: 'non_retryable', attempts: 1 });
    expect(a.events[2]).toMatchObject({ outcome: 'failed', retryAt: null, deadReason: 'non_retryable', error: { name: 'NonRetryableError', message: 'card declined' } });
    expect(b).toEqual(a);
    expect(far.answer).toMatchObject({ state: 'dead', retryAt: null });
    expectRemoteOrigin(far.id);
  });

  it('a retryable error on the last attempt: dead (exhausted), same rows and events', async () => {
    const near = await failNear('retryable', 1);
    const far = await failFar('retryable', 1);
    const [a, b] = [await trace(near), await trace(far.id)];
    expect(a.job).toMatchObject({ state: 'dead', deadReason: 'exhausted', attempts: 1, maxAttempts: 1 });
    expect(a.events[2]).toMatchObject({ retryAt: null, deadReason: 'exhausted' });
    expect(b).toEqual(a);
    expectRemoteOrigin(far.id);
  });
});
