/**
 * PostgreSQL intake answers with rows built from the input, not read back
 * (src/store/postgres/intake-rows.ts): each must equal what `getJob` reads
 * back, on both insert paths (the one-statement plain enqueue and the keyed
 * transaction) and for inputs the database stores differently from how they
 * came (payloads JSON changes, lone surrogates, -0). PostgreSQL as in
 * postgres.test.ts.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { STRICT_PRIORITY_MS } from '../../src/core/queue-policy.js';
import type { JobRow, NewJob } from '../../src/core/types.js';
import type { EnqueueOptions } from '../../src/store/engine.js';
import { keptByJson, storedText } from '../../src/store/postgres/intake-rows.js';
import { openPostgresEngine, type PostgresEngine } from '../../src/store/postgres/postgres-engine.js';

const PG_URL = process.env.DROVER_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const T0 = 1_700_000_000_000;

const admin = new pg.Pool({ connectionString: PG_URL, max: 1 });
admin.on('error', () => undefined);

beforeAll(async () => {
  try {
    await admin.query('SELECT 1');
  } catch (error) {
    throw new Error(`PostgreSQL is not reachable at ${PG_URL} (${(error as Error).message}); start it or set DROVER_TEST_PG_URL`);
  }
});

afterAll(async () => {
  await admin.end();
});

const bare = (over: Partial<NewJob> = {}): NewJob => ({ handler: 'h', queue: 'default', payload: { n: 1 }, priority: 0, runAt: T0, maxAttempts: 3, ...over });

/** Every optional field of `NewJob` set (but `control`: trigger merges are trigger-groups.ts's). */
const full = (over: Partial<NewJob> = {}): NewJob =>
  bare({
    payload: { to: 'a@example.com', tags: ['x', 'y"z', 'a\\b', '{c,d}', 'NULL', ''], nested: { deep: [1, 2.5, -3, true, null] }, ü: 'ünïcødé 🚚' },
    priority: 5,
    maxAttempts: 4,
    eventId: 'evt_1',
    idempotencyKey: 'key-1',
    concurrencyKey: 'h:customer-9',
    concurrencyLimit: 2,
    traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    tenant: 'acme',
    priorityMs: 1_000,
    ...over,
  });

/** Payloads JSON does not keep as they are: the answer must show them as stored. */
const sparse = [1, , 3];
const changedByJson: Array<[string, unknown]> = [
  ['undefined', undefined],
  ['-0', -0],
  ['NaN and Infinity', { a: Number.NaN, b: Number.POSITIVE_INFINITY, c: [Number.NEGATIVE_INFINITY] }],
  ['undefined members', { a: undefined, b: [undefined, 1] }],
  ['a Date', { at: new Date(T0) }],
  ['a Map and a class instance', { m: new Map([[1, 2]]), c: new (class Point { x = 1 })() }],
  ['a sparse array', sparse],
  ['toJSON', { toJSON: () => ({ replaced: true }) }],
  ['a function member', { f: () => 1, kept: 2 }],
  ['deep nesting', JSON.parse(`${'['.repeat(40)}1${']'.repeat(40)}`)],
  ['-0 inside', { z: [-0] }],
  ['a null-prototype object', Object.assign(Object.create(null) as object, { a: 1 })],
];

/** Payloads JSON keeps: the answer may share them. */
const keptAsTheyAre: Array<[string, unknown]> = [
  ['null', null],
  ['a string', 'text with "quotes", \\backslashes\\, {braces} and , commas'],
  ['a number', 42.5],
  ['a boolean', false],
  ['an empty object and array', { o: {}, a: [] }],
  ['an own __proto__ key', JSON.parse('{"__proto__": {"x": 1}, "y": 2}')],
  ['a lone surrogate', { s: '\ud800 and \udfff' }],
];

describe('postgres intake rows', () => {
  let schema: string;
  let engine: PostgresEngine;
  let now = T0;

  beforeEach(async () => {
    now = T0;
    schema = `drover_t_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
    engine = openPostgresEngine({ url: PG_URL, schema, clock: () => now, poolMax: 4, nodeLockWaitMs: 300 });
    await engine.migrate();
  });

  afterEach(async () => {
    await engine.close();
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  });

  /** Enqueue `jobs` in one call; every answer must be created and equal its stored row. */
  const enqueueAndCompare = async (jobs: NewJob[], options?: EnqueueOptions): Promise<JobRow[]> => {
    const results = await engine.enqueue(jobs, options);
    expect(results).toHaveLength(jobs.length);
    for (const { job, created } of results) {
      expect(created).toBe(true);
      expect(job).toStrictEqual(await engine.getJob(job.id));
    }
    return results.map((r) => r.job);
  };

  it('answers a job with every optional field set, on both insert paths, as getJob reads it back', async () => {
    const [keyed] = await enqueueAndCompare([full()]);
    const [plain] = await enqueueAndCompare([full({ idempotencyKey: null })]);
    for (const job of [keyed!, plain!]) {
      expect(job).toMatchObject({ state: 'queued', eventId: 'evt_1', concurrencyKey: 'h:customer-9', concurrencyLimit: 2, tenant: 'acme', attempts: 0, createdAt: T0, updatedAt: T0 });
    }
    expect(keyed!.idempotencyKey).toBe('key-1');
    const [scheduledKeyed, scheduledPlain] = [
      ...(await enqueueAndCompare([full({ idempotencyKey: 'key-2', runAt: T0 + 5_000 })])),
      ...(await enqueueAndCompare([full({ idempotencyKey: null, runAt: T0 + 5_000 })])),
    ];
    expect([scheduledKeyed!.state, scheduledPlain!.state]).toEqual(['scheduled', 'scheduled']);
  });

  it('answers a job with no optional field set, on both insert paths, as getJob reads it back', async () => {
    const [plain] = await enqueueAndCompare([bare()]);
    expect(plain).toMatchObject({ eventId: null, idempotencyKey: null, concurrencyKey: null, concurrencyLimit: null, traceparent: null, tenant: null });
    await enqueueAndCompare([bare({ idempotencyKey: 'only-a-key' })]);
  });

  it('answers a mixed batch (keyed and unkeyed, several queues, fair and not) in input order', async () => {
    const options: EnqueueOptions = {
      queueLimits: new Map([
        ['fair', { maxDepth: 1_000, fairness: 'tenant' as const }],
        ['default', { maxDepth: 1_000 }],
      ]),
    };
    const jobs = Array.from({ length: 30 }, (_, i) =>
      full({
        queue: i % 3 === 0 ? 'fair' : 'default',
        idempotencyKey: i % 2 === 0 ? `k${i}` : null,
        tenant: i % 4 === 0 ? null : `t${i % 3}`,
        payload: { i },
        runAt: T0 + (i % 5) * 1_000 - 2_000,
      }),
    );
    const keyed = await enqueueAndCompare(jobs, options);
    expect(keyed.map((j) => j.payload)).toEqual(jobs.map((j) => j.payload));
    const plain = await enqueueAndCompare(jobs.map((j) => ({ ...j, idempotencyKey: null })), options);
    expect(plain.map((j) => j.payload)).toEqual(jobs.map((j) => j.payload));
  });

  it('answers concurrent plain enqueues (one statement for several calls) each with its own rows', async () => {
    const calls = Array.from({ length: 8 }, (_, c) => Array.from({ length: 1 + (c % 3) }, (_, i) => bare({ payload: { c, i } })));
    const answers = await Promise.all(calls.map((jobs) => engine.enqueue(jobs)));
    expect(engine.enqueueStats.statements).toBeLessThan(calls.length);
    answers.forEach((results, c) => {
      expect(results.map((r) => r.job.payload)).toEqual(calls[c]!.map((j) => j.payload));
    });
    for (const results of answers) for (const { job } of results) expect(job).toStrictEqual(await engine.getJob(job.id));
  });

  it('gives the plain statement only the parts a call needs: turns in fair queues alone, leases, no limit at all', async () => {
    const fairTags = async () =>
      new Map((await admin.query<{ id: string; fair_tag: string }>(`SELECT id::text, fair_tag FROM ${schema}.jobs`)).rows.map((r) => [r.id, Number(r.fair_tag)]));
    const fair: EnqueueOptions = { queueLimits: new Map([['fair', { maxDepth: 1_000, fairness: 'tenant' as const }]]) };
    // No limit on either queue: the statement has no depth check; the fair queue still takes turns.
    const first = await enqueueAndCompare([bare({ queue: 'fair', tenant: 'a' }), bare({ queue: 'fair', tenant: 'a' }), bare()], fair);
    const unlimited = await enqueueAndCompare([bare(), bare({ queue: 'other' })]);
    let tags = await fairTags();
    expect(first.map((j) => tags.get(j.id))).toEqual([1, 2, 0]);
    expect(unlimited.map((j) => tags.get(j.id))).toEqual([0, 0]);

    // Leased by the insert, in a fair queue and out of one: the leased job is the worker's, the others wait their turn.
    const jobs = [bare({ queue: 'fair', tenant: 'a' }), bare({ queue: 'fair', tenant: 'a' }), bare()];
    const results = await engine.enqueue(jobs, { ...fair, lease: { workerId: 'w1', leaseMs: [30_000, null, 30_000] } });
    expect(results.map((r) => r.leased?.workerId ?? null)).toEqual(['w1', null, 'w1']);
    const stored = await Promise.all(results.map((r) => engine.getJob(r.job.id)));
    expect(stored.map((j) => j?.state)).toEqual(['running', 'queued', 'running']);
    expect(results[1]!.job).toStrictEqual(stored[1]);
    tags = await fairTags();
    expect(results.map((r) => tags.get(r.job.id))).toEqual([3, 4, 0]);
  });

  it.each(changedByJson)('answers a payload JSON changes (%s) as stored', async (_, payload) => {
    for (const idempotencyKey of [null, 'k']) {
      const [job] = await enqueueAndCompare([bare({ payload, idempotencyKey })]);
      expect(job!.payload).toStrictEqual(JSON.parse(JSON.stringify(payload ?? null) ?? 'null'));
    }
  });

  it.each(keptAsTheyAre)('answers a payload JSON keeps (%s) as it was sent', async (_, payload) => {
    for (const idempotencyKey of [null, 'k']) await enqueueAndCompare([bare({ payload, idempotencyKey })]);
    expect(keptByJson(payload, 0)).toBe(true);
  });

  it('answers text and integers as stored: lone surrogates as U+FFFD, -0 as 0', async () => {
    const odd = { concurrencyKey: 'c\ud800', tenant: 't\udc00x', traceparent: 'tp\ud83d', priority: -0, runAt: T0 };
    const [plain] = await enqueueAndCompare([bare(odd)]);
    expect(plain).toMatchObject({ concurrencyKey: 'c\ufffd', tenant: 't\ufffdx', traceparent: 'tp\ufffd' });
    expect(Object.is(plain!.priority, 0)).toBe(true);
    await enqueueAndCompare([bare({ ...odd, idempotencyKey: 'k\ud800' })]);
    expect(storedText('pair 🚚 kept')).toBe('pair 🚚 kept');
  });

  it('answers a duplicate with the existing row, also for a key with a lone surrogate', async () => {
    for (const key of ['dup', 'dup\ud800']) {
      const [first] = await engine.enqueue([full({ idempotencyKey: key, payload: { first: true } })]);
      now += 1_000;
      const [again, inCall] = await engine.enqueue([full({ idempotencyKey: key, payload: { first: false } }), full({ idempotencyKey: key })]);
      for (const duplicate of [again!, inCall!]) {
        expect(duplicate.created).toBe(false);
        expect(duplicate.job).toStrictEqual(first!.job);
        expect(duplicate.job).toStrictEqual(await engine.getJob(first!.job.id));
      }
    }
  });

  it('answers an event fan-out (ingest) with the event and its jobs as stored', async () => {
    const results = await engine.ingest([
      { event: { id: 'evt_x', name: 'order.created', data: { order: 7 }, tenant: 'acme' }, jobs: [full({ idempotencyKey: null, eventId: null, payload: { order: 7 } }), bare({ handler: 'h2', payload: { order: 7 } })] },
      { event: { id: 'evt_y', name: 'order.paid', data: { at: new Date(T0), n: -0 } }, jobs: [bare({ idempotencyKey: 'paid', payload: { at: new Date(T0) } })] },
      { event: { id: 'evt_z', name: 'order.none', data: undefined }, jobs: [] },
    ]);
    expect(results.map((r) => r.jobs.length)).toEqual([2, 1, 0]);
    for (const result of results) {
      expect(result.created).toBe(true);
      expect(result.event).toStrictEqual(await engine.getEvent(result.event.id));
      for (const job of result.jobs) {
        expect(job.eventId).toBe(result.event.id);
        expect(job).toStrictEqual(await engine.getJob(job.id));
      }
    }
    expect(results[1]!.event.data).toStrictEqual({ at: new Date(T0).toISOString(), n: 0 });
    const [again] = await engine.ingest([{ event: { id: 'evt_x', name: 'order.created', data: { order: 8 } }, jobs: [bare()] }]);
    expect(again).toMatchObject({ created: false, event: results[0]!.event });
  });

  it('keeps refusing a batch that would overflow a limited queue, writing nothing', async () => {
    const options: EnqueueOptions = { queueLimits: new Map([['default', { maxDepth: 2 }]]) };
    await expect(engine.enqueue([bare(), bare(), bare()], options)).rejects.toMatchObject({ code: 'queue_full' });
    expect(await engine.listJobs({ limit: 10 })).toEqual([]);
    await enqueueAndCompare([bare(), bare({ priorityMs: STRICT_PRIORITY_MS })], options);
  });
});
