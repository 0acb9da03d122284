#!/usr/bin/env node
/**
 * Per-phase store cost of a drain, the engine API called directly (no runtime, no handlers): enqueue
 * (500 a call), lease (250 a call), start and complete (10 at a time, as a busy node's turns), each as
 * wall and CPU µs per job of this process. It imports ../dist: run `npm run build` first.
 *
 *   node bench/store-micro.mjs [--engine sqlite|postgres] [--jobs 20000] [--url postgres://postgres@127.0.0.1:5432/test]
 *
 * Compare builds by alternating runs and quoting medians (the machine is shared). On PostgreSQL the
 * CPU is the client's share only: the server's work is not counted.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    engine: { type: 'string', default: 'sqlite' },
    jobs: { type: 'string' },
    url: { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/test' },
  },
});
const N = Number(values.jobs ?? positionals[0] ?? 20000);

async function openStore() {
  if (values.engine === 'sqlite') {
    const { openSqliteEngine } = await import('../dist/store/sqlite/sqlite-engine.js');
    const dir = mkdtempSync(join(tmpdir(), 'store-micro-'));
    const store = await openSqliteEngine({ path: join(dir, 'drover.db') });
    return { store, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
  }
  if (values.engine === 'postgres') {
    const { openPostgresEngine } = await import('../dist/store/postgres/postgres-engine.js');
    const schema = `store_micro_${process.pid}`;
    const store = openPostgresEngine({ url: values.url, schema });
    const cleanup = async () => {
      const { default: pg } = await import('pg');
      const admin = new pg.Client({ connectionString: values.url });
      await admin.connect();
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.end();
    };
    return { store, cleanup };
  }
  throw new Error(`--engine must be sqlite or postgres, not ${values.engine}`);
}

const { store, cleanup } = await openStore();
try {
  await store.migrate();
  const phase = async (label, fn) => {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const result = await fn();
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    console.log(label.padEnd(10), 'wall µs/job', ((ms * 1000) / N).toFixed(1), 'cpu µs/job', ((cpu.user + cpu.system) / N).toFixed(1));
    return result;
  };
  const job = (i) => ({ handler: 'noop', queue: 'default', payload: { i }, priority: 0, runAt: Date.now(), maxAttempts: 3 });
  await phase('enqueue', async () => {
    for (let i = 0; i < N; i += 500) await store.enqueue(Array.from({ length: Math.min(500, N - i) }, (_, k) => job(i + k)));
  });
  const leased = await phase('lease', async () => {
    const all = [];
    while (all.length < N) {
      const got = await store.lease({ workerId: 'w1', handlers: [{ name: 'noop', max: 250 }], limit: 250, leaseMs: 60_000 });
      if (got.length === 0) break;
      all.push(...got);
    }
    return all;
  });
  if (leased.length !== N) throw new Error(`leased ${leased.length} of ${N} jobs`);
  await phase('start', async () => {
    for (let i = 0; i < N; i += 10) await Promise.all(leased.slice(i, i + 10).map((j) => store.start(j.id, j.leaseToken)));
  });
  await phase('complete', async () => {
    for (let i = 0; i < N; i += 10) await Promise.all(leased.slice(i, i + 10).map((j) => store.complete(j.id, j.leaseToken, null, { row: false })));
  });
} finally {
  await store.close();
  await cleanup();
}
