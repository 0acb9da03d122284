/**
 * A node of a build on a fresh store (a temp SQLite file or a throwaway
 * PostgreSQL schema), its one handler (`sink`, concurrency 1) parked on its
 * only slot, so what the intake tools measure (api-enqueue-cpu.mjs,
 * sdk-chain.mjs) is intake. As the bench's intake worker, the per-key rate
 * limit is off and the queue's maxDepth raised (the runs exceed both by
 * design); logs at info, as a node runs by default, to /dev/null.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const BENCH_KEY = 'drv_bench_admin_key_0123456789abcdef';
export const BENCH_PG_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * `build`: the build's `resolveConfig`, `startNode` and `createLogger`.
 * `listen`: on 127.0.0.1 (else `app.inject` only); `sync`: SQLite's `synchronous`.
 * Returns the node, its schema (PostgreSQL, else null) and `close`, which drops the store.
 */
export async function startParkedNode(build, engine, { listen = false, sync } = {}) {
  const { default: pino } = await import('pino');
  const dir = mkdtempSync(join(tmpdir(), 'drover-parked-'));
  const schema = `bench_parked_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  const store = engine === 'sqlite' ? { databaseUrl: join(dir, 'drover.db'), ...(sync ? { sqlite: { synchronous: sync } } : {}) } : { databaseUrl: BENCH_PG_URL, postgres: { schema } };
  const parkUntilAborted = (ctx) => new Promise((done) => ctx.signal.addEventListener('abort', done, { once: true }));
  const config = build.resolveConfig({ handlers: [{ name: 'sink', concurrency: 1, run: parkUntilAborted }], ...store, log: { level: 'info' }, rateLimit: { enabled: false }, queues: { default: { maxDepth: 100_000_000 } }, server: { host: '127.0.0.1', port: 0 } }, {}, {});
  const logger = build.createLogger({ level: 'info', destination: pino.destination({ dest: '/dev/null', sync: false }) });
  const node = await build.startNode({ config, bootstrapAdminKey: BENCH_KEY, logger, listen, print: () => undefined, dataDir: dir }).catch((error) => {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  });
  return {
    node,
    schema: engine === 'postgres' ? schema : null,
    async close() {
      await node.shutdown(0);
      rmSync(dir, { recursive: true, force: true });
      if (engine !== 'postgres') return;
      const { default: pg } = await import('pg');
      const admin = new pg.Client({ connectionString: BENCH_PG_URL });
      await admin.connect();
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.end();
    },
  };
}
