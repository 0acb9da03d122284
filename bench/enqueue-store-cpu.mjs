#!/usr/bin/env node
/**
 * The store's share of intake: `engine.enqueue` of `--batch` jobs a call, one
 * call in flight (as one SDK batch request reaches the store), CPU per job of
 * this process (`process.cpuUsage`; user alone too: the system part is
 * mostly the SQLite commit's fdatasync, noisy on a shared VM) and wall time
 * per job. No HTTP, no
 * runtime: the engine alone, on a temp SQLite file or a throwaway
 * PostgreSQL schema. On PostgreSQL `--server-cpu` also counts the server's
 * side: the CPU time of the engine's backends (found by their
 * application_name, `drover/<schema>`), read from /proc/<pid>/schedstat, so
 * only for a server on this machine whose /proc this user may read.
 *
 *   node bench/enqueue-store-cpu.mjs [--engine sqlite|postgres] [--batch 16] [--blocks 12] [--server-cpu] [--dist DIR [--dist DIR2]]
 *
 * Given two `--dist` builds, both run in this process, one store each,
 * taking turns block by block (A B, B A, ...) so drifting machine load hits
 * both alike; it prints medians and in how many blocks B used less CPU.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { backendCpu, usedBetween } from './lib/pg-backend-cpu.mjs';

const { values } = parseArgs({
  options: {
    engine: { type: 'string', default: 'sqlite' },
    batch: { type: 'string', default: '16' },
    blocks: { type: 'string', default: '12' },
    'server-cpu': { type: 'boolean', default: false },
    dist: { type: 'string', multiple: true, default: [] },
    url: { type: 'string', default: process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
  },
});
const batch = Number(values.batch);
const blocks = Number(values.blocks);
const callsPerBlock = Math.ceil(8000 / batch);
const dists = (values.dist.length > 0 ? values.dist : [fileURLToPath(new URL('../dist/', import.meta.url))]).map((d) => pathToFileURL(`${resolve(d)}/`).href);

async function open(dist, index) {
  if (values.engine === 'sqlite') {
    const { openSqliteEngine } = await import(new URL('store/sqlite/sqlite-engine.js', dist).href);
    const dir = mkdtempSync(join(tmpdir(), 'enqueue-store-cpu-'));
    const store = await openSqliteEngine({ path: join(dir, 'drover.db') });
    return { store, cleanup: async () => { await store.close(); rmSync(dir, { recursive: true, force: true }); } };
  }
  const { openPostgresEngine } = await import(new URL('store/postgres/postgres-engine.js', dist).href);
  const schema = `enqueue_store_cpu_${process.pid}_${index}`;
  const store = openPostgresEngine({ url: values.url, schema });
  const cleanup = async () => {
    await store.close();
    const { default: pg } = await import('pg');
    const admin = new pg.Client({ connectionString: values.url });
    await admin.connect();
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
  };
  return { store, cleanup, schema };
}

const builds = [];
for (const [index, dist] of dists.entries()) {
  const { store, cleanup, schema } = await open(dist, index);
  await store.migrate();
  builds.push({ label: dists.length > 1 ? `${String.fromCharCode(65 + index)}:${fileURLToPath(dist)}` : fileURLToPath(dist), store, cleanup, schema, cpu: [], user: [], wall: [], server: [] });
}
const serverCpu = values['server-cpu'] && values.engine === 'postgres';
let admin = null;
if (serverCpu) {
  const { default: pg } = await import('pg');
  admin = new pg.Client({ connectionString: values.url });
  await admin.connect();
}
let seq = 0;
const jobs = () => Array.from({ length: batch }, () => ({ handler: 'sink', queue: 'default', payload: { i: seq++, kind: 'bench' }, priority: 0, runAt: Date.now(), maxAttempts: 3 }));
// A limited queue, as the bench's intake worker has: the depth check runs.
const options = { queueLimits: new Map([['default', { maxDepth: 100_000_000 }]]) };
try {
  for (const b of builds) for (let i = 0; i < 200; i++) await b.store.enqueue(jobs(), options);
  for (let block = 0; block < blocks; block++) {
    for (const b of block % 2 ? [...builds].reverse() : builds) {
      const server = serverCpu ? await backendCpu(admin, b.schema) : null;
      const cpu = process.cpuUsage();
      const started = performance.now();
      for (let i = 0; i < callsPerBlock; i++) await b.store.enqueue(jobs(), options);
      const used = process.cpuUsage(cpu);
      if (server) b.server.push(usedBetween(server, await backendCpu(admin, b.schema)) / 1000 / (callsPerBlock * batch));
      b.wall.push(((performance.now() - started) * 1000) / (callsPerBlock * batch));
      b.cpu.push((used.user + used.system) / (callsPerBlock * batch));
      b.user.push(used.user / (callsPerBlock * batch));
    }
  }
} finally {
  await admin?.end();
  for (const b of builds) await b.cleanup();
}
const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
for (const b of builds) {
  const server = serverCpu ? `, server ${median(b.server).toFixed(2)} µs/job` : '';
  console.log(`${values.engine} batch=${batch} ${b.label}: CPU ${median(b.cpu).toFixed(2)} µs/job (user ${median(b.user).toFixed(2)})${server}, wall ${median(b.wall).toFixed(2)} µs/job (medians of ${blocks} blocks)`);
}
if (builds.length === 2) {
  const [a, b] = builds;
  const fewer = (key) => a[key].filter((cpu, i) => b[key][i] < cpu).length;
  console.log(`B/A CPU ${(median(b.cpu) / median(a.cpu)).toFixed(3)}, user ${(median(b.user) / median(a.user)).toFixed(3)}; B used less CPU in ${fewer('cpu')} of ${blocks} blocks, less user CPU in ${fewer('user')}`);
  if (serverCpu) console.log(`B/A server CPU ${(median(b.server) / median(a.server)).toFixed(3)}, B lower in ${fewer('server')} of ${blocks} blocks; wall ${(median(b.wall) / median(a.wall)).toFixed(3)}, B lower in ${fewer('wall')}`);
}
