/**
 * One mechanism of PostgreSQL's enqueue→start tail, alone (docs/benchmarks.md
 * "PostgreSQL: enqueue→start p99, stage by stage"): an idle node's enqueue (its
 * insert leases the job) made while another insert is in flight. How long
 * until it is answered, for two builds in one process, alternated round by
 * round, each on its own schema:
 *
 *   node bench/enqueue-beside.mjs <dist A> <dist B> [rounds] [gapMs]
 *
 * Each round: a plain enqueue is sent; once it is on the wire (two turns) and
 * `gapMs` later (busy wait), a leasing enqueue is made; its time from call to
 * answer is recorded (and the plain one's). Prints per build p50/p90/p99 of
 * both. Needs the test server (127.0.0.1:5432, user postgres, db test).
 */
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';

const PG_URL = process.env.DROVER_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const [distA, distB] = process.argv.slice(2, 4);
const rounds = Number(process.argv[4] ?? 400);
const gapMs = Number(process.argv[5] ?? 0.3);
if (!distA || !distB) throw new Error('usage: node bench/enqueue-beside.mjs <dist A> <dist B> [rounds] [gapMs]');

const now = () => Number(process.hrtime.bigint()) / 1e6;
const turn = () => new Promise((r) => setImmediate(r));
const job = (i) => ({ handler: 'h', queue: 'default', payload: { i }, priority: 0, runAt: Date.now(), maxAttempts: 3 });

async function open(dist) {
  const { openPostgresEngine } = await import(pathToFileURL(resolve(dist, 'store/postgres/postgres-engine.js')).href);
  const schema = `drover_b_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
  const engine = openPostgresEngine({ url: PG_URL, schema, poolMax: 4 });
  await engine.migrate();
  return { dist, engine, schema, plain: [], leasing: [] };
}

async function round(side, i) {
  const a = side.engine.enqueue([job(i)]);
  const aAt = now();
  await turn();
  await turn();
  const until = now() + gapMs;
  while (now() < until);
  const bAt = now();
  const b = side.engine.enqueue([job(i)], { lease: { workerId: 'w', leaseMs: [30_000] } });
  const [, ] = await Promise.all([a.then(() => side.plain.push(now() - aAt)), b.then(() => side.leasing.push(now() - bAt))]);
}

const pct = (v, p) => {
  const s = [...v].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))].toFixed(2);
};

const sides = [await open(distA), await open(distB)];
try {
  for (let i = 0; i < rounds; i++) {
    for (const side of i % 2 ? [...sides].reverse() : sides) await round(side, i);
    // Keep the tables small: each round's jobs are not needed again.
    if (i % 100 === 99) for (const side of sides) await side.engine.prune?.({ finishedBefore: 0, deadBefore: 0, eventsBefore: 0, batchSize: 1000 }).catch(() => undefined);
  }
  for (const side of sides) {
    console.log(`${side.dist}: leasing enqueue behind a plain one, call→answer p50 ${pct(side.leasing, 50)} p90 ${pct(side.leasing, 90)} p99 ${pct(side.leasing, 99)} ms; the plain one p50 ${pct(side.plain, 50)} p99 ${pct(side.plain, 99)} ms (${rounds} rounds, gap ${gapMs} ms)`);
  }
} finally {
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  for (const side of sides) {
    await side.engine.close();
    await admin.query(`DROP SCHEMA IF EXISTS ${side.schema} CASCADE`);
  }
  await admin.end();
}
