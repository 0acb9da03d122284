/**
 * Job search over a large table (issue 19): `GET /v1/jobs` filters, payload
 * fields included, timed at the store (`listJobs`, what the route calls) on
 * each engine over N jobs, without and with the expression index
 * `search.payloadIndexes` builds on the searched field. Run: `npx tsx bench/job-search.ts [--jobs 1000000] [--engine sqlite|postgres]`.
 * Results are printed as a markdown table (p50 / p95 of 20 runs, ms).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { NewJob } from '../src/core/types.js';
import type { JobFilter, StorageEngine } from '../src/store/engine.js';
import { openStore } from '../src/store/open.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};
const N = Number(arg('jobs', '1000000'));
const engines = arg('engine', 'sqlite,postgres').split(',');
const PG_URL = process.env.DROVER_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const RUNS = 20;

const searches: Array<[string, Omit<JobFilter, 'limit'>]> = [
  ['no filter, first page', {}],
  ['handler, first page', { handler: 'h1' }],
  ['payload.orderId = a recent order (1 match)', { payload: [{ path: ['orderId'], value: `o-${N - 100}` }] }],
  ['payload.customer.id = one of 1,000 customers', { payload: [{ path: ['customer', 'id'], value: 'c-7' }] }],
  ['payload.orderId = an old order (1 match, 1st % of the table)', { payload: [{ path: ['orderId'], value: 'o-10' }] }],
  ['payload.orderId = no such order', { payload: [{ path: ['orderId'], value: 'o-none' }] }],
  ['payload.orderId = old order + handler', { handler: 'h1', payload: [{ path: ['orderId'], value: 'o-13' }] }],
];

async function fill(engine: StorageEngine): Promise<void> {
  const batch = 1000;
  const started = Date.now();
  for (let i = 0; i < N; i += batch) {
    const jobs: NewJob[] = [];
    for (let j = i; j < Math.min(N, i + batch); j++) {
      jobs.push({ handler: `h${j % 4}`, queue: 'default', payload: { orderId: `o-${j}`, customer: { id: `c-${j % 1000}` }, amount: j % 500 }, priority: 0, runAt: Date.now() + 86_400_000, maxAttempts: 3 });
    }
    await engine.enqueue(jobs);
    if (i % 100_000 === 0) process.stderr.write(`  ${i} jobs (${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
  }
}

async function time(engine: StorageEngine, filter: Omit<JobFilter, 'limit'>): Promise<{ p50: number; p95: number; found: number }> {
  const times: number[] = [];
  let found = 0;
  for (let r = 0; r < RUNS; r++) {
    const t = performance.now();
    found = (await engine.listJobs({ ...filter, limit: 50 })).length;
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return { p50: times[Math.floor(RUNS / 2)]!, p95: times[Math.ceil(RUNS * 0.95) - 1]!, found };
}

async function run(kind: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'drover-search-'));
  const schema = `drover_search_${process.pid}`;
  const url = kind === 'sqlite' ? join(dir, 'drover.db') : PG_URL;
  const engine = await openStore(url, { postgres: { schema, poolMax: 4, statementTimeoutMs: 120_000, queryTimeoutMs: 130_000 } });
  const admin = kind === 'postgres' ? new pg.Client({ connectionString: PG_URL }) : null;
  await admin?.connect();
  try {
    await engine.migrate();
    process.stderr.write(`${kind}: filling ${N} jobs\n`);
    await fill(engine);
    const rows: string[] = [];
    for (const [name, filter] of searches) {
      const r = await time(engine, filter);
      rows.push(`| ${kind} | ${name} | ${r.found} | ${r.p50.toFixed(1)} | ${r.p95.toFixed(1)} |`);
      process.stderr.write(`${rows.at(-1)}\n`);
    }
    // What `search.payloadIndexes: ['orderId']` has the node do at start.
    const built = await engine.ensurePayloadIndexes([['orderId']]);
    process.stderr.write(`built ${built.join(', ')}\n`);
    for (const [name, filter] of searches.slice(4)) {
      const r = await time(engine, filter);
      rows.push(`| ${kind} + index on orderId | ${name} | ${r.found} | ${r.p50.toFixed(1)} | ${r.p95.toFixed(1)} |`);
      process.stderr.write(`${rows.at(-1)}\n`);
    }
    console.log(rows.join('\n'));
  } finally {
    await engine.close();
    if (admin) {
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
      await admin.end();
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`| engine | search (limit 50, newest first) | found | p50 ms | p95 ms |\n|---|---|---|---|---|`);
for (const kind of engines) await run(kind);
