/**
 * Durable execution on the PostgreSQL engine: the shared durable conformance
 * suite (on schemas reused from test to test, emptied between), and the never-miss race
 * between a suspend registering an event wait and the event being ingested
 * at the same moment by another engine (another node) on the same schema.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { openPostgresEngine, type PostgresEngine } from '../../src/store/postgres/postgres-engine.js';
import { pgSchemaPool, pooledEngineFactory } from '../helpers/pg-schema-pool.js';
import { waitFor } from '../helpers/wait-for.js';
import { describeDurableConformance } from './durable-conformance.js';

const PG_URL = process.env.DROVER_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const admin = new pg.Pool({ connectionString: PG_URL, max: 2 });
admin.on('error', () => undefined);
const schemas = new Set<string>();

function newSchema(): string {
  const schema = `drover_d_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
  schemas.add(schema);
  return schema;
}

async function dropSchema(schema: string): Promise<void> {
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  schemas.delete(schema);
}

// The conformance suite takes a migrated schema left empty by the test before (test/helpers/pg-schema-pool.ts
// says when one is dropped instead); the race tests below keep a fresh schema each.
const conformanceSchemas = pgSchemaPool(admin, 'drover_d_');

afterAll(async () => {
  await conformanceSchemas.drain();
  for (const schema of [...schemas]) await dropSchema(schema);
  await admin.end();
});

describeDurableConformance('postgres', pooledEngineFactory(conformanceSchemas, PG_URL));

describe('postgres: never miss an event', () => {
  const open: PostgresEngine[] = [];
  afterEach(async () => {
    for (const engine of open.splice(0)) await engine.close();
  });

  it('an event ingested by another node while a wait is being registered is never missed, nor delivered twice', async () => {
    const schema = newSchema();
    const a = openPostgresEngine({ url: PG_URL, schema, poolMax: 6 });
    const b = openPostgresEngine({ url: PG_URL, schema, poolMax: 6 });
    open.push(a, b);
    await a.migrate();
    await b.migrate();
    const jitter = () => new Promise<void>((resolve) => (Math.random() < 0.5 ? setImmediate(resolve) : setTimeout(resolve, Math.random() * 2)));

    const outcomes = { lookBack: 0, ingest: 0 };
    const deadline = Date.now() + 60_000;
    for (let i = 0; i < 150 && Date.now() < deadline; i++) {
      await a.enqueue([{ handler: 'h', queue: 'default', payload: { i }, priority: 0, runAt: 0, maxAttempts: 3 }]);
      const [job] = await a.lease({ workerId: 'w', handlers: [{ name: 'h', max: 1 }], limit: 1, leaseMs: 60_000 });
      const startedAt = Date.now();
      const [suspended, ingested] = await Promise.all([
        jitter().then(() =>
          a.suspend(job!.id, job!.leaseToken, {
            step: 'wait',
            seq: 0,
            kind: 'event',
            startedAt,
            wakeAt: startedAt + 600_000,
            events: ['race', 'race.other'],
            match: { 'data.i': i },
          }),
        ),
        jitter().then(() => b.ingest([{ event: { id: `e-${i}`, name: 'race', data: { i } }, jobs: [] }])),
      ]);
      expect(suspended.ok).toBe(true);
      const resolved = ingested[0]!.resolvedWaits ?? [];
      if (suspended.ok && !suspended.suspended) {
        outcomes.lookBack++;
        expect((suspended.step.result as { id: string }).id).toBe(`e-${i}`);
        expect(resolved).toEqual([]);
      } else {
        outcomes.ingest++;
        expect(resolved.map((r) => r.job.id)).toEqual([job!.id]);
      }
      const steps = await a.getSteps(job!.id);
      expect(steps).toHaveLength(1);
      expect((steps[0]!.result as { id: string }).id).toBe(`e-${i}`);
      expect(await a.pendingWait(job!.id)).toBeNull();
      // Done with it: the next iteration's lease takes the next job.
      const current = (await a.getJob(job!.id))!;
      if (current.state === 'running') await a.complete(job!.id, job!.leaseToken, null);
      else await a.cancel(job!.id);
    }
    // Both orders happened (otherwise the test proved only one of them).
    expect(outcomes.lookBack + outcomes.ingest).toBeGreaterThanOrEqual(50);
    expect(outcomes.lookBack).toBeGreaterThan(0);
    expect(outcomes.ingest).toBeGreaterThan(0);
  }, 90_000);
});

describe('postgres: resumes and timeouts on two nodes at once', () => {
  const open: PostgresEngine[] = [];
  afterEach(async () => {
    for (const engine of open.splice(0)) await engine.close();
  });

  it('two resumes, or a resume and the timeout, from different nodes: exactly one outcome, one step', async () => {
    const schema = newSchema();
    let now = 1_700_000_000_000;
    const clock = () => now;
    const a = openPostgresEngine({ url: PG_URL, schema, poolMax: 4, clock });
    const b = openPostgresEngine({ url: PG_URL, schema, poolMax: 4, clock });
    open.push(a, b);
    await a.migrate();
    for (let i = 0; i < 40; i++) {
      await a.enqueue([{ handler: 'h', queue: 'default', payload: { i }, priority: 0, runAt: 0, maxAttempts: 1 }]);
      const [job] = await a.lease({ workerId: 'w', handlers: [{ name: 'h', max: 1 }], limit: 1, leaseMs: 60_000 });
      const result = await a.suspend(job!.id, job!.leaseToken, { step: 'ask', seq: 0, kind: 'interrupt', startedAt: now, wakeAt: now + 1000 });
      if (!result.ok || !result.suspended) throw new Error('expected a suspension');
      const racingTimeout = i % 2 === 1;
      if (racingTimeout) now += 1000;
      const [first, second] = await Promise.all([
        racingTimeout ? b.stageDue() : b.resumeWait(result.wait.id, 'b', 'key_b'),
        a.resumeWait(result.wait.id, 'a', 'key_a'),
      ]);
      const outcomes = [
        'staged' in first ? (first.woken ?? []).some((w) => w.id === result.wait.id) : first.ok,
        second.ok,
      ];
      expect(outcomes.filter(Boolean)).toHaveLength(1);
      expect(await a.getSteps(job!.id)).toHaveLength(1);
      expect((await a.getJob(job!.id))!.state).toBe('queued');
      await a.cancel(job!.id);
    }
  }, 60_000);

  it('two matching events ingested on two nodes at once resolve the wait once', async () => {
    const schema = newSchema();
    const a = openPostgresEngine({ url: PG_URL, schema, poolMax: 4 });
    const b = openPostgresEngine({ url: PG_URL, schema, poolMax: 4 });
    open.push(a, b);
    await a.migrate();
    for (let i = 0; i < 40; i++) {
      await a.enqueue([{ handler: 'h', queue: 'default', payload: { i }, priority: 0, runAt: 0, maxAttempts: 1 }]);
      const [job] = await a.lease({ workerId: 'w', handlers: [{ name: 'h', max: 1 }], limit: 1, leaseMs: 60_000 });
      const request = { step: 'paid', seq: 0, kind: 'event' as const, startedAt: Date.now(), wakeAt: null, events: ['paid', 'settled'] };
      const result = await a.suspend(job!.id, job!.leaseToken, request);
      if (!result.ok || !result.suspended) throw new Error('expected a suspension');
      const [x, y] = await Promise.all([
        a.ingest([{ event: { id: `x-${i}`, name: 'paid', data: { i } }, jobs: [] }]),
        b.ingest([{ event: { id: `y-${i}`, name: 'settled', data: { i } }, jobs: [] }]),
      ]);
      const resolutions = [...(x[0]!.resolvedWaits ?? []), ...(y[0]!.resolvedWaits ?? [])];
      expect(resolutions.map((r) => r.wait.id)).toEqual([result.wait.id]);
      const steps = await a.getSteps(job!.id);
      expect(steps).toHaveLength(1);
      expect((steps[0]!.result as { id: string }).id).toBe(resolutions[0]!.event.id);
      await a.cancel(job!.id);
    }
  }, 60_000);
});

describe('postgres: a job queued by a wake-up wakes idle nodes', () => {
  const open: PostgresEngine[] = [];
  afterEach(async () => {
    for (const engine of open.splice(0)) await engine.close();
  });

  it('an event, a resume and a timeout on one node are heard by another through NOTIFY', async () => {
    const schema = newSchema();
    const a = openPostgresEngine({ url: PG_URL, schema, poolMax: 4 });
    const b = openPostgresEngine({ url: PG_URL, schema, poolMax: 4 });
    open.push(a, b);
    await a.migrate();
    const seen: string[] = [];
    b.onWork((queues) => seen.push(...queues));
    // b's LISTEN session is up once it hears a plain enqueue.
    await waitFor(async () => {
      await a.enqueue([{ handler: 'other', queue: 'ping', payload: null, priority: 0, runAt: 0, maxAttempts: 1 }]);
      return seen.includes('ping');
    }, { timeoutMs: 5_000, intervalMs: 50, message: 'engine b listens' });

    const suspendIn = async (queue: string, kind: 'event' | 'interrupt' | 'sleep') => {
      await a.enqueue([{ handler: 'h', queue, payload: null, priority: 0, runAt: 0, maxAttempts: 1 }]);
      const [job] = await a.lease({ workerId: 'w', handlers: [{ name: 'h', max: 1 }], limit: 1, leaseMs: 60_000 });
      const result = await a.suspend(job!.id, job!.leaseToken, {
        step: 's',
        seq: 0,
        kind,
        startedAt: Date.now(),
        wakeAt: kind === 'sleep' ? Date.now() + 50 : null,
        ...(kind === 'event' ? { events: [`go.${queue}`] } : {}),
      });
      if (!result.ok || !result.suspended) throw new Error('expected a suspension');
      return result.wait;
    };

    await suspendIn('by-event', 'event');
    await a.ingest([{ event: { id: 'go', name: 'go.by-event', data: null }, jobs: [] }]);
    await waitFor(() => seen.includes('by-event'), { timeoutMs: 5_000, message: 'b hears the job an event woke' });

    const ask = await suspendIn('by-resume', 'interrupt');
    expect((await a.resumeWait(ask.id, { ok: true }, 'key_1')).ok).toBe(true);
    await waitFor(() => seen.includes('by-resume'), { timeoutMs: 5_000, message: 'b hears the job a resume woke' });

    await suspendIn('by-timer', 'sleep');
    await waitFor(async () => ((await a.stageDue()).woken ?? []).length > 0, { timeoutMs: 5_000, intervalMs: 20, message: 'the sleep ends' });
    await waitFor(() => seen.includes('by-timer'), { timeoutMs: 5_000, message: 'b hears the job a timer woke' });
  });
});
