/**
 * A rate limit kept in the store (PostgreSQL, shared by every node): a job's
 * start waits for the store's verdict, holding its slot. A node that shuts
 * down meanwhile hands the job back unstarted, its attempt unspent. The
 * verdict is held up for real: another connection locks the window's row.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';

const PG_URL = process.env.DROVER_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `drover_rl_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
const admin = new pg.Pool({ connectionString: PG_URL, max: 3 });
admin.on('error', () => undefined);

beforeAll(async () => {
  try {
    await admin.query('SELECT 1');
  } catch (error) {
    throw new Error(`PostgreSQL is not reachable at ${PG_URL} (${(error as Error).message}); start it (\`.ci/run\` does) or set DROVER_TEST_PG_URL`);
  }
});
afterAll(async () => {
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin.end();
});

describe('shared rate limit', () => {
  it('hands back unstarted a job still waiting for the store\'s verdict when the node shuts down', { timeout: 30_000 }, async () => {
    const ran: number[] = [];
    const node = await startTestNode({
      databaseUrl: PG_URL,
      postgres: { schema, poolMax: 4 },
      handlers: [{ name: 'limited', rateLimit: { limit: 100, periodMs: 60_000 }, run: (ctx) => void ran.push((ctx.job.payload as { n: number }).n) }],
      rateLimit: { enabled: false },
    });
    const job = async (id: string) => (await admin.query(`SELECT state, attempts FROM ${schema}.jobs WHERE id = $1`, [id])).rows[0] as { state: string; attempts: number };
    let stopping: Promise<unknown> | null = null;
    const holder = await admin.connect();
    try {
      // The first start creates the window's row.
      const first = (await node.request('POST', '/v1/jobs', { handler: 'limited', payload: { n: 1 } })).body.id as string;
      await waitFor(async () => (await job(first)).state === 'succeeded', { timeoutMs: 10_000, message: 'the first job ran' });

      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM ${schema}.rate_windows FOR UPDATE`);
      const second = (await node.request('POST', '/v1/jobs', { handler: 'limited', payload: { n: 2 } })).body.id as string;
      // Leased, and its start is waiting on the row.
      await waitFor(
        async () =>
          (await admin.query("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%rate_windows%' AND pid <> $1", [(holder as unknown as { processID: number }).processID])).rowCount! > 0,
        { timeoutMs: 10_000, message: 'a start waiting for the rate limit' },
      );
      expect((await job(second)).state).toBe('running');

      stopping = node.shutdown(5_000);
      await holder.query('COMMIT');
      await stopping;
      expect(ran).toEqual([1]);
      const after = await job(second);
      expect(after.state).toBe('queued');
      expect(after.attempts).toBe(0);
    } finally {
      holder.release();
      if (!stopping) await node.close();
    }
  });
});
