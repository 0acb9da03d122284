/**
 * Graphile Worker 0.17 on the local PostgreSQL, one throwaway schema per run.
 *   default: `run()` with its defaults (pollInterval 2 s + LISTEN/NOTIFY, no local queue, per-job completion).
 *   tuned:   the docs' high-throughput options: preset.worker.localQueue { size: 500 } and
 *            completeJobBatchDelay / failJobBatchDelay 0 (batched completion).
 * Enqueue: WorkerUtils.addJob / addJobs.
 */
import { makeWorkerUtils, run } from 'graphile-worker';
import { PG_URL, dropSchema, schemaName } from './pg-util.mjs';
import { peerSystem } from './peer.mjs';

const TUNED = { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 };

function logger() {
  // Graphile's default logger prints every job to stdout; keep warnings and errors only, on stderr.
  return import('graphile-worker').then(({ Logger }) => new Logger(() => (level, message) => {
    if (level === 'error' || level === 'warning') process.stderr.write(`[graphile-worker] ${level}: ${message}\n`);
  }));
}

export const adapter = {
  name: (variant) => (variant === 'tuned' ? 'graphile-worker tuned' : 'graphile-worker'),
  settings: (variant) => ({
    version: '0.17.3',
    concurrency: 'per workload (10 or 50)',
    pollInterval: '2000 ms (default) + LISTEN/NOTIFY',
    ...(variant === 'tuned' ? { preset: { worker: TUNED } } : { localQueue: 'off (default)', completeJobBatchDelay: '-1 (default: complete each job on its own)' }),
    crashRecovery: 'a job locked by a dead worker is freed after 4 h (locked_at timeout, fixed)',
  }),
  crash: { setting: 'jobs locked > 4 h are unlocked', defaultSeconds: 4 * 3600, waitSeconds: Number(process.env.BENCH_CRASH_WAIT_PG ?? 20) },

  async prepare() {
    const schema = schemaName('bench_gw');
    const utils = await makeWorkerUtils({ connectionString: PG_URL, schema, logger: await logger() });
    try {
      await utils.migrate();
    } finally {
      await utils.release();
    }
    return { schema };
  },
  destroy: (ctx) => dropSchema(ctx.schema),

  async openClient(ctx) {
    const utils = await makeWorkerUtils({ connectionString: PG_URL, schema: ctx.schema, logger: await logger() });
    return {
      add: (payload) => utils.addJob('noop', payload),
      addMany: (payloads) => utils.addJobs(payloads.map((payload) => ({ identifier: 'noop', payload }))),
      close: () => utils.release(),
    };
  },

  async startWorker(ctx, variant, { handler, concurrency }) {
    const runner = await run({
      connectionString: PG_URL,
      schema: ctx.schema,
      concurrency,
      noHandleSignals: true,
      logger: await logger(),
      taskList: { noop: (payload) => handler(payload) },
      ...(variant === 'tuned' ? { preset: { worker: TUNED } } : {}),
    });
    return () => runner.stop();
  },
};

export default function create(options) {
  return peerSystem('graphile-worker', adapter, 'default', options);
}
