/**
 * pg-boss 10 on the local PostgreSQL, one throwaway schema per run.
 * v10 has no teamSize: parallelism is the number of work() subscriptions, each
 * fetching up to batchSize jobs per poll and completing them together. For a
 * workload's concurrency C we register C subscriptions (one poll loop each) with
 * batchSize 100 — the configuration that gave pg-boss its best drain here
 * (issue 8: ~7,000 jobs/s) — and pollingIntervalSeconds 0.5 (its minimum;
 * default 2). Enqueue: send() / insert().
 */
import PgBoss from 'pg-boss';
import { PG_URL, dropSchema, schemaName } from './pg-util.mjs';
import { peerSystem } from './peer.mjs';

const BATCH = 100;
const POLL_S = 0.5;

function boss(ctx, extra = {}) {
  const b = new PgBoss({ connectionString: PG_URL, schema: ctx.schema, ...extra });
  b.on('error', (error) => process.stderr.write(`[pg-boss] ${error?.message ?? error}\n`));
  return b;
}

export const adapter = {
  name: () => 'pg-boss',
  settings: () => ({
    version: '10.4.2',
    work: `concurrency work() subscriptions (v10 has no teamSize) × batchSize ${BATCH}, pollingIntervalSeconds ${POLL_S} (minimum; default 2)`,
    crashRecovery: 'expireInSeconds 900 (default 15 min) + monitorStateIntervalSeconds / maintenance sweep',
  }),
  crash: { setting: 'expireInSeconds 900 (15 min) + maintenance sweep', defaultSeconds: 900, waitSeconds: Number(process.env.BENCH_CRASH_WAIT_PG ?? 20) },

  async prepare() {
    const ctx = { schema: schemaName('bench_pgboss') };
    const b = boss(ctx, { supervise: false, schedule: false });
    await b.start();
    await b.createQueue('noop');
    await b.stop({ graceful: false, wait: true });
    return ctx;
  },
  destroy: (ctx) => dropSchema(ctx.schema),

  async openClient(ctx) {
    const b = boss(ctx, { supervise: false, schedule: false, migrate: false });
    await b.start();
    return {
      add: (data) => b.send('noop', data),
      addMany: (payloads) => b.insert(payloads.map((data) => ({ name: 'noop', data }))),
      close: () => b.stop({ graceful: false, wait: true }),
    };
  },

  async startWorker(ctx, _variant, { handler, concurrency }) {
    const b = boss(ctx, { migrate: false });
    await b.start();
    const subscriptions = Math.max(1, concurrency);
    for (let i = 0; i < subscriptions; i++) {
      await b.work('noop', { batchSize: BATCH, pollingIntervalSeconds: POLL_S }, (jobs) => Promise.all(jobs.map((job) => handler(job.data))));
    }
    return () => b.stop({ graceful: false, wait: true });
  },
};

export default function create(options) {
  return peerSystem('pg-boss', adapter, 'default', options);
}
