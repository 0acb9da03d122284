#!/usr/bin/env node
/**
 * Soak (issue 24, target 6): a `drover start` node under steady churn for a
 * long time, with retention on, sampled every minute: the store's table and
 * index sizes, the node's RSS and CPU, and the queue's counts. The store must
 * stay bounded (flat after warm-up) with no manual VACUUM on PostgreSQL.
 * Opt-in and long: not part of `npm run bench` or CI.
 *
 *   node bench/soak.mjs [--engine sqlite|postgres] [--minutes 30] [--rate 200]
 *                       [--keep-s 60] [--prune-s 10] [--sample-s 60]
 *
 * The node runs one no-op handler; the bench enqueues `rate` jobs/s over HTTP
 * (open loop, one request per job); retention keeps succeeded jobs `keep-s`
 * seconds and the pruner runs every `prune-s` seconds, so the store's steady
 * state holds about rate × (keep + prune) finished jobs. Prints one line per
 * sample to stderr, a markdown table at the end; writes
 * bench/results/soak-<engine>.json.
 */
import { createRequire } from 'node:module';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { now, sleep } from './lib/clock.mjs';
import { createClient } from './lib/http.mjs';
import { cleanupAll, cpuSecondsOf, makeTempDir, memoryOf, removeTempDir, spawnTracked } from './lib/processes.mjs';
import { PG_URL, dropSchema, schemaName } from './systems/pg-util.mjs';

const { values } = parseArgs({
  options: {
    engine: { type: 'string', default: 'sqlite' },
    minutes: { type: 'string', default: '30' },
    rate: { type: 'string', default: '200' },
    'keep-s': { type: 'string', default: '60' },
    'prune-s': { type: 'string', default: '10' },
    'sample-s': { type: 'string', default: '60' },
  },
});
const engine = values.engine;
if (engine !== 'sqlite' && engine !== 'postgres') throw new Error(`--engine ${engine}: sqlite or postgres`);
const minutes = Number(values.minutes);
const rate = Number(values.rate);
const sampleMs = Number(values['sample-s']) * 1000;
const ROOT = fileURLToPath(new URL('../', import.meta.url));
const KEY = 'drv_bench_admin_key_0123456789abcdef';

process.on('exit', cleanupAll);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));

const dir = makeTempDir('drover-soak-');
const schema = engine === 'postgres' ? schemaName('bench_soak') : null;
const storeUrl = engine === 'postgres' ? PG_URL : join(dir, 'drover.db');
const config = join(dir, 'soak.config.mjs');
writeFileSync(
  config,
  `export default {
  handlers: [{ name: 'noop', concurrency: 10, run() {} }],
  retention: { succeededMs: ${Number(values['keep-s']) * 1000}, deadMs: ${Number(values['keep-s']) * 1000}, eventsMs: ${Number(values['keep-s']) * 1000}, intervalMs: ${Number(values['prune-s']) * 1000} },
};\n`,
);

/** PostgreSQL: dead row versions and autovacuum runs per table at the last sample. */
const deadRows = {};
/** PostgreSQL: the server's `autovacuum` setting; off, nothing reclaims dead rows and the tables grow without bound. */
let autovacuum = null;
if (engine === 'postgres') {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  autovacuum = (await client.query('SHOW autovacuum')).rows[0].autovacuum;
  await client.end();
  if (autovacuum !== 'on') process.stderr.write(`[soak] WARNING: this PostgreSQL server runs with autovacuum = ${autovacuum}: dead rows are never reclaimed and the tables will grow; Drover relies on autovacuum (on by default)\n`);
}

/** The store's size by table and index (MiB), read beside the running node. */
async function storeSizes() {
  if (engine === 'sqlite') {
    const Database = createRequire(join(ROOT, 'package.json'))('better-sqlite3');
    const db = new Database(storeUrl, { readonly: true });
    try {
      const rows = db.prepare("SELECT name, sum(pgsize) AS bytes FROM dbstat WHERE name LIKE 'jobs%' OR name LIKE 'attempts%' OR name LIKE 'events%' GROUP BY name").all();
      const files = Object.fromEntries(['', '-wal'].map((s) => [`file${s || ''}`, fileMiB(`${storeUrl}${s}`)]));
      return { ...files, ...Object.fromEntries(rows.map((r) => [r.name, r.bytes / 1048576])) };
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    const { rows } = await client.query(
      `SELECT c.relname AS name, pg_relation_size(c.oid) AS bytes FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = $1 AND c.relkind IN ('r', 'i') AND (c.relname LIKE 'jobs%' OR c.relname LIKE 'attempts%' OR c.relname LIKE 'events%')`,
      [schema],
    );
    const total = await client.query('SELECT sum(pg_total_relation_size(c.oid)) AS bytes FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = \'r\'', [schema]);
    // Dead row versions and autovacuum runs: what keeps the tables bounded (or not) on PostgreSQL.
    const vacuum = await client.query("SELECT relname, n_dead_tup, autovacuum_count FROM pg_stat_user_tables WHERE schemaname = $1 AND relname IN ('jobs', 'attempts')", [schema]);
    for (const r of vacuum.rows) deadRows[r.relname] = { dead: Number(r.n_dead_tup), autovacuums: Number(r.autovacuum_count) };
    return { schemaTotal: Number(total.rows[0].bytes) / 1048576, ...Object.fromEntries(rows.map((r) => [r.name, Number(r.bytes) / 1048576])) };
  } finally {
    await client.end();
  }
}

function fileMiB(path) {
  try {
    return statSync(path).size / 1048576;
  } catch {
    return 0;
  }
}

/** Per table, its own size and its indexes' (relations named `<table>_…`), plus the store's total. */
function summary(sizes) {
  const out = {};
  for (const table of ['jobs', 'attempts', 'events']) {
    out[table] = sizes[table] ?? 0;
    out[`${table} indexes`] = Object.entries(sizes).filter(([name]) => name.startsWith(`${table}_`)).reduce((sum, [, v]) => sum + v, 0);
  }
  if (engine === 'sqlite') Object.assign(out, { 'file': sizes.file, 'WAL file': sizes['file-wal'] });
  else out['schema total'] = sizes.schemaTotal;
  return out;
}
const env = { ...process.env };
for (const name of Object.keys(env)) if (name.startsWith('DROVER_')) delete env[name];
const node = spawnTracked(process.execPath, [join(ROOT, 'bin/drover'), 'start', '--config', config, '--port', '0'], {
  cwd: dir,
  env: { ...env, DROVER_DATABASE_URL: storeUrl, DROVER_BOOTSTRAP_ADMIN_KEY: KEY, DROVER_LOG_LEVEL: 'warn', DROVER_HOST: '127.0.0.1', ...(schema ? { DROVER_PG_SCHEMA: schema } : {}) },
  label: 'drover soak node',
});
const samples = [];
let client;
try {
  const { match } = await node.waitForLine(/^drover ready .* url=(\S+)$/, 30_000, 'its ready line');
  client = createClient(match[1], { key: KEY, maxSockets: 16 });
  const started = now();
  const end = started + minutes * 60_000;
  let sent = 0;
  let failed = 0;
  let inFlight = 0;
  const producer = (async () => {
    // Open loop: job k is due at started + k / rate; a slow answer never slows the schedule (up to 256 in flight).
    while (now() < end) {
      const due = started + (sent * 1000) / rate;
      const wait = due - now();
      if (wait > 1) await sleep(wait);
      if (inFlight >= 256) {
        await sleep(1);
        continue;
      }
      inFlight++;
      sent++;
      client.post('/v1/jobs', { handler: 'noop', payload: { i: sent } }).then(
        () => inFlight--,
        () => {
          inFlight--;
          failed++;
        },
      );
    }
  })();
  for (let next = started + sampleMs; next <= end + 1; next += sampleMs) {
    await sleep(Math.max(0, next - now()));
    const { queues } = await client.getJson('/v1/queues');
    const counts = queues.find((q) => q.name === 'default')?.counts ?? {};
    const sample = { minute: Number(((now() - started) / 60_000).toFixed(1)), sent, failed, counts, rssMiB: memoryOf(node.pid).rssMiB, cpuSeconds: cpuSecondsOf(node.pid), sizesMiB: await storeSizes() };
    if (engine === 'postgres') sample.deadRows = structuredClone(deadRows);
    samples.push(sample);
    const sizes = Object.entries(summary(sample.sizesMiB)).map(([k, v]) => `${k}=${v.toFixed(1)}`).join(', ');
    const dead = sample.deadRows ? `, dead rows ${JSON.stringify(sample.deadRows)}` : '';
    process.stderr.write(`[soak] min ${sample.minute}: sent ${sent} (failed ${failed}), rss ${sample.rssMiB.toFixed(0)} MiB, cpu ${sample.cpuSeconds.toFixed(0)} s, counts ${JSON.stringify(counts)}, ${sizes}${dead}\n`);
  }
  await producer;
} finally {
  client?.close();
  await node.stop(10_000);
  if (schema) await dropSchema(schema);
  removeTempDir(dir);
}

const names = Object.keys(summary(samples[0]?.sizesMiB ?? {}));
const lines = [`| minute | RSS (MiB) | succeeded kept | ${names.map((n) => `${n} (MiB)`).join(' | ')} |`, `|---:|---:|---:|${names.map(() => '---:').join('|')}|`];
for (const s of samples) {
  const sizes = summary(s.sizesMiB);
  lines.push(`| ${s.minute} | ${s.rssMiB.toFixed(0)} | ${s.counts.succeeded ?? '?'} | ${names.map((n) => sizes[n].toFixed(1)).join(' | ')} |`);
}
const server = autovacuum === null ? '' : `, PostgreSQL autovacuum ${autovacuum}`;
process.stdout.write(`drover ${engine} soak: ${rate} jobs/s for ${minutes} min, retention ${values['keep-s']} s, pruner every ${values['prune-s']} s${server}\n\n${lines.join('\n')}\n`);
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(new URL(`./results/soak-${engine}.json`, import.meta.url), `${JSON.stringify({ date: new Date().toISOString(), engine, rate, minutes, autovacuum, samples }, null, 2)}\n`);
