#!/usr/bin/env node
/**
 * What a drover-postgres drain writes and what it costs the server, per job:
 * tuple writes and HOT updates per table (pg_stat_user_tables), the size each
 * jobs index grew to (index inserts leave no counter of their own), WAL bytes
 * (the whole server's: other users of it count too) and the CPU of the
 * worker's backends (utime + stime from /proc, so the server must run on this
 * machine). A diagnostic, not part of `npm run bench`.
 *
 *   node bench/pg-writes.mjs [--jobs 20000] [--concurrency 10]
 *
 * The worker connects with its own application_name, which tells its backends
 * from the seeding node's; they are polled every 50 ms and each one's last
 * sample counts (after the drain they sit idle until the worker stops).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { droverSystem } from './systems/drover.mjs';
import { PG_URL, dropSchema, schemaName } from './systems/pg-util.mjs';

const { values } = parseArgs({ options: { jobs: { type: 'string', default: '20000' }, concurrency: { type: 'string', default: '10' } } });
const n = Number(values.jobs);
const concurrency = Number(values.concurrency);
const schema = schemaName('bench_writes');
const appName = `bench-writes-${schema.slice(-12)}`;
const TICKS = 100; // USER_HZ on Linux

const admin = new pg.Client({ connectionString: PG_URL });
await admin.connect();

/** utime + stime of a process in seconds, or null when it is gone. */
function cpuOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / TICKS;
  } catch {
    return null;
  }
}

const backends = new Map(); // pid -> last CPU seconds seen
let polling = true;
const poller = (async () => {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    while (polling) {
      const { rows } = await client.query('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [appName]);
      for (const { pid } of rows) {
        const cpu = cpuOf(pid);
        if (cpu !== null) backends.set(pid, cpu);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } finally {
    await client.end();
  }
})();

let stats = null;
const url = new URL(PG_URL);
url.searchParams.set('application_name', appName);
const sys = droverSystem(
  {
    name: 'drover postgres (pg-writes)',
    settings: {},
    storeUrl: () => PG_URL,
    // The worker's URL only (the seeding node uses storeUrl): its backends are the ones measured.
    runEnv: () => ({ DROVER_PG_SCHEMA: schema, DROVER_DATABASE_URL: url.href }),
    async dropRun(env) {
      try {
        await new Promise((resolve) => setTimeout(resolve, 800)); // the stats collector's flush
        const tables = await admin.query(
          'SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del FROM pg_stat_user_tables WHERE schemaname = $1 AND n_tup_ins + n_tup_upd + n_tup_del > 0 ORDER BY relname',
          [env.DROVER_PG_SCHEMA],
        );
        const indexes = await admin.query(
          "SELECT indexrelname AS name, pg_relation_size(indexrelid) AS bytes FROM pg_stat_user_indexes WHERE schemaname = $1 AND relname = 'jobs' ORDER BY indexrelname",
          [env.DROVER_PG_SCHEMA],
        );
        const table = await admin.query("SELECT pg_relation_size(format('%I.jobs', $1::text)) AS bytes", [env.DROVER_PG_SCHEMA]);
        stats = { tables: tables.rows, indexes: indexes.rows, jobsBytes: Number(table.rows[0].bytes) };
      } finally {
        await dropSchema(env.DROVER_PG_SCHEMA);
      }
    },
  },
  {},
);

/** Committed transactions in the database so far (the whole database's: the seeding node's count too, ~1 per 1,000 jobs). */
async function commits() {
  await admin.query('SELECT pg_stat_clear_snapshot()');
  return Number((await admin.query('SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()')).rows[0].xact_commit);
}

let result;
let walBytes;
let transactions;
try {
  const before = (await admin.query('SELECT pg_current_wal_lsn() AS lsn')).rows[0].lsn;
  const commitsBefore = await commits();
  result = await sys.drain(n, concurrency);
  walBytes = Number((await admin.query('SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1) AS d', [before])).rows[0].d);
  await new Promise((resolve) => setTimeout(resolve, 800)); // the backends' last stats reach the collector
  transactions = (await commits()) - commitsBefore;
} finally {
  polling = false;
  await poller;
  await admin.end();
}

const per = (x) => (Number(x) / n).toFixed(3);
const backendCpu = [...backends.values()].reduce((a, b) => a + b, 0);
console.log(`drain of ${n} no-op jobs at concurrency ${concurrency}: ${Math.round(result.jobsPerSec)} jobs/s`);
// The worker's figure covers its whole life (about 1 s of CPU to start): compare runs of the same size.
console.log(`CPU per job: worker ${((result.workerCpuSeconds * 1e6) / n).toFixed(1)} us (its start included), its ${backends.size} backends ${((backendCpu * 1e6) / n).toFixed(1)} us`);
console.log(`WAL per job (whole server): ${Math.round(walBytes / n)} bytes; transactions per job (whole database): ${per(transactions)}`);
console.log('per job:        inserts  updates  HOT      non-HOT  deletes');
for (const t of stats.tables) {
  const nonHot = Number(t.n_tup_upd) - Number(t.n_tup_hot_upd);
  console.log(`  ${t.relname.padEnd(14)}${[t.n_tup_ins, t.n_tup_upd, t.n_tup_hot_upd, nonHot, t.n_tup_del].map((x) => per(x).padStart(7)).join('  ')}`);
}
console.log(`jobs heap ${(stats.jobsBytes / n).toFixed(0)} bytes/job; index bytes per job:`);
for (const i of stats.indexes) if (Number(i.bytes) > 8192) console.log(`  ${i.name.padEnd(26)}${(Number(i.bytes) / n).toFixed(1).padStart(7)}`);
