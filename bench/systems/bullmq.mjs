/**
 * BullMQ 6 on the local Redis (no persistence), one throwaway db number per
 * run, FLUSHDB after. Worker: one Worker with `concurrency` = the workload's
 * concurrency (BullMQ's documented way to run jobs in parallel in one process).
 * Enqueue: Queue.add / addBulk. Crash recovery: the stalled-job checker
 * (stalledInterval 30 s, lockDuration 30 s, defaults).
 */
import { Queue, Worker } from 'bullmq';
import IORedis from 'ioredis';
import { peerSystem } from './peer.mjs';

const DB = Number(process.env.BENCH_REDIS_DB ?? 13);
const connection = { host: '127.0.0.1', port: 6379, db: DB, maxRetriesPerRequest: null };

async function redis(fn) {
  const r = new IORedis(connection);
  try {
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

export const adapter = {
  name: () => 'bullmq',
  settings: () => ({
    version: '6.7.0',
    redis: `127.0.0.1:6379 db ${DB} (flushed after each run)`,
    worker: 'one Worker, concurrency = workload concurrency; other options default',
    crashRecovery: 'stalledInterval 30000 ms, lockDuration 30000 ms (defaults)',
  }),
  crash: { setting: 'stalledInterval 30 s / lockDuration 30 s', defaultSeconds: 60, waitSeconds: Number(process.env.BENCH_CRASH_WAIT_REDIS ?? 70) },

  async prepare() {
    const size = await redis((r) => r.dbsize());
    if (size !== 0) throw new Error(`Redis db ${DB} is not empty (${size} keys); set BENCH_REDIS_DB to an unused db number`);
    return { db: DB };
  },
  destroy: () => redis((r) => r.flushdb()),

  async openClient() {
    const queue = new Queue('noop', { connection });
    await queue.waitUntilReady();
    return {
      add: (data) => queue.add('noop', data),
      addMany: (payloads) => queue.addBulk(payloads.map((data) => ({ name: 'noop', data }))),
      close: () => queue.close(),
    };
  },

  async startWorker(_ctx, _variant, { handler, concurrency }) {
    const worker = new Worker('noop', (job) => handler(job.data), { connection, concurrency });
    worker.on('error', (error) => process.stderr.write(`[bullmq] ${error?.message ?? error}\n`));
    await worker.waitUntilReady();
    return () => worker.close(true);
  },
};

export default function create(options) {
  return peerSystem('bullmq', adapter, 'default', options);
}
