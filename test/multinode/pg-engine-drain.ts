/**
 * Engine-only drain ceiling on PostgreSQL (not a test): lease in batches, complete
 * every job at once, as a dispatcher with no handler cost would.
 * `npx tsx test/multinode/pg-engine-drain.ts [jobs] [batch] [pipelines]`
 */
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';
import { openPostgresEngine } from '../../src/store/postgres/postgres-engine.js';

const url = process.env.DROVER_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const jobs = Number(process.argv[2] ?? 20_000);
const batch = Number(process.argv[3] ?? 64);
const pipelines = Number(process.argv[4] ?? 2);
const schema = `drover_edrain_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
const engine = openPostgresEngine({ url, schema });
await engine.migrate();
if (process.env.SETUP_SQL) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query(`SET search_path = ${schema}`);
  await c.query(process.env.SETUP_SQL);
  await c.end();
}
for (let i = 0; i < jobs; i += 1000) {
  await engine.enqueue(Array.from({ length: Math.min(1000, jobs - i) }, () => ({ handler: 'noop', queue: 'default', payload: null, priority: 0, runAt: Date.now(), maxAttempts: 3 })));
}
/** CPU seconds used so far by every postgres process on this machine (server + backends), from /proc. */
function postgresCpuSeconds(): number {
  let ticks = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (name !== 'postgres') continue;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // exited meanwhile
    }
  }
  return ticks / 100;
}
const pgCpuBefore = postgresCpuSeconds();
const nodeCpuBefore = process.cpuUsage();
let done = 0;
let leases = 0;
let leaseMs = 0;
const started = performance.now();
async function pipeline(): Promise<void> {
  const pending: Promise<unknown>[] = [];
  for (;;) {
    const t = performance.now();
    const leased = await engine.lease({ workerId: 'w', handlers: [{ name: 'noop', max: batch }], limit: batch, leaseMs: 60_000 });
    leaseMs += performance.now() - t;
    leases++;
    if (leased.length === 0) break;
    for (const job of leased) pending.push(engine.complete(job.id, job.leaseToken, null).then(() => void done++));
  }
  await Promise.all(pending);
}
await Promise.all(Array.from({ length: pipelines }, () => pipeline()));
const seconds = (performance.now() - started) / 1000;
const pgUs = ((postgresCpuSeconds() - pgCpuBefore) * 1e6) / done;
const cpu = process.cpuUsage(nodeCpuBefore);
const nodeUs = (cpu.user + cpu.system) / done;
process.stdout.write(
  `engine drain ${done} jobs, batch ${batch}, ${pipelines} lease loops: ${Math.round(done / seconds)} jobs/s; ${leases} leases, mean ${(leaseMs / leases).toFixed(2)} ms; CPU per job: postgres ${pgUs.toFixed(1)} µs, node ${nodeUs.toFixed(1)} µs\n`,
);
await engine.close();
const admin = new pg.Client({ connectionString: url });
await admin.connect();
await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
await admin.end();
