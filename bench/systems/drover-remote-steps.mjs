// A remote worker for the durable bench (`node` this file): runWorker from the
// built SDK (dist/sdk/worker.js) runs `rsteps`, payload.n no-op ctx.step.run
// steps over the lease protocol (POST /v1/workers/steps once, then one
// POST /v1/workers/step per step), and prints how long they took as
// `bench:rsteps <json>`, like drover-worker.config.mjs's `steps`.
import { runWorker } from '../../dist/sdk/worker.js';

/** bench/lib/clock.mjs `now`: the machine's monotonic clock, shared by every process. */
const now = () => Number(process.hrtime.bigint()) / 1e6;
const report = (kind, value) => process.stdout.write(`bench:${kind} ${JSON.stringify(value)}\n`);

const worker = runWorker({
  url: process.env.BENCH_URL,
  key: process.env.BENCH_KEY,
  waitMs: 20_000,
  onError: (error, context) => process.stderr.write(`${context.op}: ${error.message}\n`),
  handlers: {
    async rsteps(ctx) {
      const { n } = ctx.job.payload;
      const started = now();
      for (let i = 0; i < n; i++) await ctx.step.run(`s${i}`, () => i);
      report('rsteps', { job: ctx.job.id, n, ms: now() - started });
      return n;
    },
  },
});
process.once('SIGTERM', () => void worker.stop(1_000).then(() => process.exit(0)));
report('ready', { workerId: worker.workerId });
