/**
 * The store wrapper (STYLE rule 2): every engine call is timed under its
 * method name, failures included; engine extras (`stats`, `onWork`) still
 * work through it; store spans appear only inside a traced operation.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-node';
import { afterEach, describe, expect, it } from 'vitest';
import { DroverMetrics } from '../../src/obs/metrics.js';
import { Tracing } from '../../src/obs/tracing.js';
import type { StorageEngine } from '../../src/store/engine.js';
import { instrumentStore } from '../../src/store/instrumented.js';
import { openStore } from '../../src/store/open.js';
import { parseExposition } from './exposition.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function engine(): Promise<StorageEngine> {
  const dir = mkdtempSync(join(tmpdir(), 'drover-instrumented-'));
  const store = await openStore(join(dir, 'drover.db'));
  cleanups.push(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await store.migrate();
  return store;
}

function job(handler = 'h') {
  return { handler, queue: 'default', payload: { n: 1 }, priority: 0, runAt: Date.now(), maxAttempts: 3 };
}

describe('instrumentStore', () => {
  it('times every call by operation and engine, failures included, and keeps the engine usable', async () => {
    const raw = await engine();
    const metrics = new DroverMetrics({ handlers: [], queues: [], engine: raw.capabilities.engine });
    const store = instrumentStore(raw, { timer: (op) => metrics.storeTimer(op) });

    const [enqueued] = await store.enqueue([job()]);
    await store.enqueue([job()]);
    await store.getJob(enqueued!.job.id);
    await expect(store.complete('no-such-job', 'token', null)).resolves.toMatchObject({ ok: false });
    raw.getEvent = async () => {
      throw new Error('boom');
    };
    await expect(store.getEvent('e')).rejects.toThrow('boom'); // the replaced method is wrapped too

    expect(store.capabilities.engine).toBe('sqlite');
    expect((store as unknown as { stats: { batches: number } }).stats.batches).toBeGreaterThan(0);
    let woken = 0;
    const unsubscribe = store.onWork(() => woken++);
    await store.enqueue([job()]);
    unsubscribe();
    expect(woken).toBe(1);

    const m = parseExposition(await metrics.registry.metrics());
    const count = (op: string) => m.value('drover_store_operation_duration_seconds_count', { op, engine: 'sqlite' });
    expect(count('enqueue')).toBe(3);
    expect(count('getJob')).toBe(1);
    expect(count('complete')).toBe(1);
    expect(count('getEvent')).toBe(1);
    expect(m.find('drover_store_operation_duration_seconds_count', { op: 'onWork' })).toEqual([]);
    expect(m.find('drover_store_operation_duration_seconds_count', { op: 'capabilities' })).toEqual([]);
  });

  it('records store spans only inside a traced operation', async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = await Tracing.withExporter({ exporter, simple: true });
    cleanups.push(() => tracing.shutdown());
    const raw = await engine();
    const metrics = new DroverMetrics({ handlers: [], queues: [], engine: 'sqlite' });
    const store = instrumentStore(raw, { timer: (op) => metrics.storeTimer(op), tracer: tracing.tracer });

    await store.queueStats(); // no active span: no store span
    await tracing.tracer.startActiveSpan('operation', async (parent) => {
      await store.enqueue([job()]);
      await expect(store.cancel('missing')).resolves.toBeNull();
      parent.end();
    });
    const spans = exporter.getFinishedSpans();
    expect(spans.map((s) => s.name).sort()).toEqual(['operation', 'store cancel', 'store enqueue']);
    const parent = spans.find((s) => s.name === 'operation')!;
    for (const span of spans.filter((s) => s.name.startsWith('store '))) {
      expect(span.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
      expect(span.attributes['db.system.name']).toBe('sqlite');
    }
  });
});
