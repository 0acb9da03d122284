#!/usr/bin/env node
/**
 * Per-phase store cost of a drain, the engine API called directly (no runtime, no handlers): enqueue
 * (500 a call), lease (250 a call), start and complete (10 at a time, as a busy node's turns), each as
 * wall and CPU µs per job of this process. It imports ../dist: run `npm run build` first.
 *
 *   node bench/store-micro.mjs [--engine sqlite|postgres] [--jobs 20000] [--url postgres://postgres@127.0.0.1:5432/test]
 *
 * Compare builds by alternating runs and quoting medians (the machine is shared). On PostgreSQL the
 * server's share is printed beside it: the CPU of the store's own backends (found by their
 * application_name, read from /proc, so the server must run on this machine).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
    const { default: pg } = await import('pg');
    const admin = new pg.Client({ connectionString: values.url });
    await admin.connect();
    /** utime + stime (seconds) of each of the store's backends seen so far; a backend that left keeps its last reading. */
    const seen = new Map();
    const serverCpu = async () => {
      const { rows } = await admin.query('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [`drover/${schema}`]);
      for (const { pid } of rows) {
        try {
          const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
          const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
          seen.set(pid, (Number(f[11]) + Number(f[12])) / 100);
        } catch {
          // Gone between the query and the read.
        }
      }
      let sum = 0;
      for (const cpu of seen.values()) sum += cpu;
      return sum;
    };
    const cleanup = async () => {
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.end();
    };
    return { store, cleanup, serverCpu };
  }
  throw new Error(`--engine must be sqlite or postgres, not ${values.engine}`);
}

const { store, cleanup, serverCpu } = await openStore();
try {
  await store.migrate();
  const phase = async (label, fn) => {
    const server0 = serverCpu ? await serverCpu() : 0;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const result = await fn();
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const server = serverCpu ? ` server cpu µs/job ${(((await serverCpu()) - server0) * 1e6 / N).toFixed(1)}` : '';
    console.log(label.padEnd(10), 'wall µs/job', ((ms * 1000) / N).toFixed(1), 'cpu µs/job', ((cpu.user + cpu.system) / N).toFixed(1) + server);
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
