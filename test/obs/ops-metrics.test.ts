/**
 * The operations metrics (src/obs/ops-metrics.ts and the files it wires):
 * SQLite WAL size, commit and checkpoint times, checkpoints held up by a real
 * reader; store faults by kind at the seam; node liveness and a dead node
 * detected on PostgreSQL; the pool's waiting count on an idle node; process
 * limits; the built-in TLS certificate's expiry. Real stores, real nodes.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { DroverError } from '../../src/core/errors.js';
import { ErrorMetrics, storeErrorKind } from '../../src/obs/error-metrics.js';
import { DroverMetrics } from '../../src/obs/metrics.js';
import { cgroupMemoryLimit } from '../../src/obs/process-limits.js';
import { observeStorage } from '../../src/obs/store-metrics.js';
import { instrumentStore } from '../../src/store/instrumented.js';
import { openStore } from '../../src/store/open.js';
import { openSqliteEngine, type SqliteEngine } from '../../src/store/sqlite/sqlite-engine.js';
import { PG_URL, startTestNode, type TestNode } from '../helpers/node.js';
import { selfSigned } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait-for.js';
import { parseExposition } from './exposition.js';

const dir = mkdtempSync(join(tmpdir(), 'drover-ops-metrics-'));
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const job = (n: number) => ({ handler: 'h', queue: 'default', payload: { n, pad: 'x'.repeat(2000) }, priority: 0, runAt: Date.now(), maxAttempts: 3 });

async function scrape(node: TestNode) {
  const response = await node.app.inject({ method: 'GET', url: '/metrics' });
  expect(response.statusCode).toBe(200);
  return parseExposition(response.body);
}

async function sqlite(name: string): Promise<SqliteEngine> {
  const engine = await openSqliteEngine({ path: join(dir, `${name}.db`) });
  await engine.migrate();
  cleanups.push(() => engine.close());
  return engine;
}

describe('SQLite storage metrics', () => {
  it('report the WAL size, each group commit and the periodic checkpoint', async () => {
    const engine = await sqlite('wal');
    const metrics = new DroverMetrics({ handlers: [], queues: [], engine: 'sqlite' });
    const stop = observeStorage(metrics, engine, { checkpointEveryMs: 20 });
    cleanups.push(stop);
    for (let i = 0; i < 5; i++) await engine.enqueue([job(i)]);
    let text = parseExposition(await metrics.scrape());
    expect(text.value('drover_store_commit_duration_seconds_count', { engine: 'sqlite' })).toBeGreaterThanOrEqual(5);
    expect(text.value('drover_store_commit_duration_seconds_sum', { engine: 'sqlite' })).toBeGreaterThan(0);
    expect(text.value('drover_store_wal_size_bytes', { engine: 'sqlite' })).toBeGreaterThan(10_000);
    expect(text.value('drover_store_file_size_bytes', { engine: 'sqlite' })).toBeGreaterThan(0);
    await waitFor(async () => parseExposition(await metrics.scrape()).value('drover_store_checkpoints_total', { engine: 'sqlite', outcome: 'complete' }) > 0, { message: 'a complete checkpoint' });
    text = parseExposition(await metrics.scrape());
    expect(text.value('drover_store_wal_pending_frames', { engine: 'sqlite' })).toBe(0);
    expect(text.value('drover_store_checkpoint_duration_seconds_count', { engine: 'sqlite' })).toBeGreaterThan(0);
  });

  it('count a checkpoint a long-lived reader holds up as busy, with the frames it left', async () => {
    const engine = await sqlite('reader');
    await engine.enqueue([job(0)]);
    const metrics = new DroverMetrics({ handlers: [], queues: [], engine: 'sqlite' });
    // Another connection (a backup tool, an operator's sqlite3 shell) reads inside a transaction and stays there.
    const reader = new Database(engine.path, { readonly: true });
    cleanups.push(() => void reader.close());
    reader.exec('BEGIN');
    reader.prepare('SELECT count(*) FROM jobs').get();
    for (let i = 1; i < 20; i++) await engine.enqueue([job(i)]);
    const stop = observeStorage(metrics, engine, { checkpointEveryMs: 20 });
    cleanups.push(stop);
    await waitFor(async () => parseExposition(await metrics.scrape()).value('drover_store_checkpoints_total', { engine: 'sqlite', outcome: 'busy' }) > 0, { message: 'a busy checkpoint' });
    expect(parseExposition(await metrics.scrape()).value('drover_store_wal_pending_frames', { engine: 'sqlite' })).toBeGreaterThan(0);
    reader.exec('COMMIT');
    await waitFor(async () => parseExposition(await metrics.scrape()).value('drover_store_wal_pending_frames', { engine: 'sqlite' }) === 0, { message: 'the WAL checkpointed once the reader left' });
  });
});

describe('store faults by kind (drover_errors_total{layer="store"})', () => {
  it('classify real SQLite and PostgreSQL failures, and leave the caller\'s mistakes out', async () => {
    const engine = await sqlite('busy');
    const other = new Database(engine.path, { timeout: 0 });
    cleanups.push(() => void other.close());
    const holder = new Database(engine.path);
    cleanups.push(() => void holder.close());
    holder.exec('BEGIN IMMEDIATE');
    let busy: unknown;
    try {
      other.exec('BEGIN IMMEDIATE');
    } catch (error) {
      busy = error;
    }
    holder.exec('ROLLBACK');
    expect(storeErrorKind(busy)).toBe('locked');

    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    cleanups.push(() => client.end());
    await client.query('SET statement_timeout = 50');
    const timeout = await client.query('SELECT pg_sleep(2)').catch((error: unknown) => error);
    expect(storeErrorKind(timeout)).toBe('timeout');
    const refused = await new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:1/none' }).connect().catch((error: unknown) => error);
    expect(storeErrorKind(refused)).toBe('unavailable');

    expect(storeErrorKind(new DroverError('store_full', 'full', { cause: Object.assign(new Error('disk'), { code: 'SQLITE_FULL' }) }))).toBe('full');
    expect(storeErrorKind(new DroverError('not_found', 'no such job'))).toBeNull();
    expect(storeErrorKind(new DroverError('stale_lease', 'lease gone'))).toBeNull();
    expect(storeErrorKind(new Error('something else'))).toBe('other');
  });

  it('are counted at the seam for every failed store call', async () => {
    const engine = await sqlite('seam');
    const metrics = new DroverMetrics({ handlers: [], queues: [], engine: 'sqlite' });
    const errors = new ErrorMetrics(metrics);
    const store = instrumentStore(engine, { timer: (op) => metrics.storeTimer(op), onError: (_op, error) => errors.store(error) });
    expect(await store.cancel('00000000-0000-0000-0000-000000000000')).toBeNull();
    expect(parseExposition(await metrics.scrape()).find('drover_errors_total', { layer: 'store' }).reduce((n, s) => n + s.value, 0)).toBe(0);
    await engine.close();
    await expect(store.queueStats()).rejects.toThrow(/closed/);
    const text = parseExposition(await metrics.scrape());
    expect(text.value('drover_errors_total', { layer: 'store', kind: 'unavailable' })).toBe(1);
    expect(text.value('drover_errors_total', { layer: 'telemetry', kind: 'unreachable' })).toBe(0);
  });
});

describe('a node\'s operations metrics', () => {
  it('on SQLite: one node alive, process limits, commit times, the WAL', async () => {
    const node = await startTestNode({ handlers: [{ name: 'probe', on: 'probe.*', run: async () => ({ ok: true }) }] }, { engine: 'sqlite' });
    cleanups.push(() => node.close());
    expect((await node.request('POST', '/v1/events', { name: 'probe.run', data: {} })).status).toBe(202);
    const text = await scrape(node);
    expect(text.value('drover_nodes_alive')).toBe(1);
    expect(text.value('drover_node_deaths_detected_total')).toBe(0);
    expect(text.value('drover_nodejs_heap_size_limit_bytes')).toBeGreaterThan(64 * 1024 * 1024);
    expect(text.value('drover_process_memory_limit_bytes')).toBe(cgroupMemoryLimit());
    expect(text.value('drover_store_commit_duration_seconds_count', { engine: 'sqlite' })).toBeGreaterThan(0);
    expect(text.value('drover_store_wal_size_bytes', { engine: 'sqlite' })).toBeGreaterThan(0);
    expect(text.value('drover_audit_export_lag_records')).toBeGreaterThanOrEqual(0);
    expect(text.find('drover_tls_certificate_expiry_timestamp_seconds')).toEqual([]);
    // Table sizes from dbstat (a worker thread), indexes included, named as on PostgreSQL.
    const tables = text.find('drover_store_table_size_bytes', { engine: 'sqlite' });
    expect(tables.map((t) => t.labels.table)).toEqual(expect.arrayContaining(['attempts', 'events', 'jobs']));
    expect(tables.some((t) => (t.labels.table ?? '').startsWith('sqlite_'))).toBe(false);
    expect(tables.find((t) => t.labels.table === 'jobs')!.value).toBeGreaterThanOrEqual(4096 * 2); // the table and at least one index
  });

  it('on PostgreSQL: no waiting pool requests while idle, the pool limit, a silent node detected as dead, and the NOTIFY lag', async () => {
    const node = await startTestNode({ handlers: [{ name: 'probe', on: 'probe.*', run: async () => ({ ok: true }) }] }, { engine: 'postgres', dir: join(dir, 'pg-node') });
    cleanups.push(() => node.close());
    // An idle node: each scrape itself reads the store (queue depth, last backup). Those checkouts used to
    // show as "2 waiting, 0 in use" (pg-pool queues a checkout even when a connection is idle).
    for (let i = 0; i < 5; i++) {
      const text = await scrape(node);
      expect(text.value('drover_store_pool_waiting_requests', { engine: 'postgres' })).toBe(0);
      expect(text.value('drover_store_pool_max_connections', { engine: 'postgres' })).toBeGreaterThanOrEqual(4);
    }
    // Table sizes from the catalog: the node's schema, nothing else.
    const tables = (await scrape(node)).find('drover_store_table_size_bytes', { engine: 'postgres' });
    expect(tables.map((t) => t.labels.table)).toEqual(expect.arrayContaining(['attempts', 'events', 'jobs', 'nodes']));
    expect(tables.find((t) => t.labels.table === 'jobs')!.value).toBeGreaterThan(0);
    // A second node registers on the same schema and then never heartbeats (as if SIGKILLed).
    const ghost = await openStore(PG_URL, { postgres: { schema: node.runtime.config.postgres.schema } });
    cleanups.push(() => ghost.close());
    await ghost.registerNode({ nodeId: 'ghost', incarnation: 'ghost-1' });
    await waitFor(async () => (await scrape(node)).value('drover_nodes_alive') === 2, { message: 'two nodes alive' });
    await waitFor(async () => (await scrape(node)).value('drover_node_deaths_detected_total') === 1, { timeoutMs: 20_000, message: 'the silent node declared dead' });
    await waitFor(async () => (await scrape(node)).value('drover_nodes_alive') === 1, { message: 'one node alive again' });

    // Work enqueued by another engine reaches this node by NOTIFY: the lag from its stamp to the listener.
    expect((await scrape(node)).value('drover_store_notify_lag_seconds_count', { engine: 'postgres' })).toBe(0);
    await ghost.enqueue([job(1)]);
    const lagged = await waitFor(async () => {
      const text = await scrape(node);
      return text.value('drover_store_notify_lag_seconds_count', { engine: 'postgres' }) >= 1 ? text : null;
    }, { message: 'the NOTIFY observed' });
    const lag = lagged.value('drover_store_notify_lag_seconds_sum', { engine: 'postgres' });
    expect(lag).toBeGreaterThanOrEqual(0);
    expect(lag).toBeLessThan(5);
  });

  it('with built-in TLS: the certificate\'s expiry', async () => {
    const cert = selfSigned(dir, 'node');
    const node = await startTestNode({ handlers: [], server: { tls: { certFile: cert.cert, keyFile: cert.key } } } as never, { engine: 'sqlite' });
    cleanups.push(() => node.close());
    const expiry = (await scrape(node)).value('drover_tls_certificate_expiry_timestamp_seconds', { certificate: 'server' });
    // selfSigned certificates are valid for one day.
    expect(Math.abs(expiry - (Date.now() / 1000 + 86_400))).toBeLessThan(120);
  });
});
