/**
 * Start on send, against a real SIGKILL (PostgreSQL): a handler may begin once
 * its start mark is written to the marks connection's socket, before the
 * store answers. The job's row is locked by the test after it is leased, so
 * its mark cannot commit while the lock is held: a node that dies while the
 * row is locked proves its handler began before the answer. The mark's bytes
 * were already on the server: once the lock goes, the mark commits, and the
 * restarted node's reclaim counts the crash. The jobs leased ahead behind it
 * never started and go back unspent.
 *
 * Its order is set by gates, not by timing (a machine under load stretches any
 * window): one slot, and the two jobs before the killer hold it until the test
 * opens their gates (files, see the fixture), so the killer's mark cannot be
 * sent before the test holds its row. The first gate opens once the killer is
 * leased and locked. The job before the killer has its own row locked too: its
 * mark is answered only when the test lets it, after every earlier job's
 * completion is written, so the killer's mark follows an answer just read (a
 * connection in good standing, pipelined.ts) and only that job may count a
 * crash besides the killer.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { api, killAllChildren, startChildNode, type ChildNode } from '../helpers/child-node.js';
import { PG_URL } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';

const CONFIG = fileURLToPath(new URL('../fixtures/start-on-send-kill.config.mjs', import.meta.url));
const KEY = 'drv_start_on_send_test_admin_key_0123';
const NODE = 'node-sos';
/** Jobs before the killer: quick ones (so the rest are leased ahead), then the two gated ones (`GATED`, `PREVIOUS`). */
const BEFORE = 8;
const AFTER = 20;

const schema = `drover_sos_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
const db = new pg.Pool({ connectionString: PG_URL, max: 4 });
db.on('error', () => undefined);
const dir = mkdtempSync(join(tmpdir(), 'drover-sos-'));
afterAll(async () => {
  await killAllChildren();
  await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await db.end();
  rmSync(dir, { recursive: true, force: true });
});

function start(kill: boolean): Promise<ChildNode> {
  return startChildNode({
    config: CONFIG,
    cwd: dir,
    timeoutMs: 30_000,
    env: { DROVER_DATABASE_URL: PG_URL, DROVER_PG_SCHEMA: schema, DROVER_NODE_ID: NODE, DROVER_BOOTSTRAP_ADMIN_KEY: KEY, KILL_IN_HANDLER: kill ? '1' : '0' },
  });
}

/** A transaction holding a job's row: its start mark waits until `release`. */
async function lockRow(id: string): Promise<{ release: () => Promise<void> }> {
  const client = await db.connect();
  await client.query('BEGIN');
  await client.query(`SELECT 1 FROM ${schema}.jobs WHERE id = $1 FOR UPDATE`, [id]);
  let released = false;
  return {
    release: async () => {
      if (released) return;
      released = true;
      try {
        await client.query('COMMIT');
      } finally {
        client.release();
      }
    },
  };
}

async function job(id: string): Promise<{ state: string; crashes: number; attempts: number; marked: boolean }> {
  const { rows } = await db.query(`SELECT state, crashes, attempts, started_seq = lease_seq AS marked FROM ${schema}.jobs WHERE id = $1`, [id]);
  return rows[0];
}

describe('start on send (postgres)', () => {
  it('a handler that SIGKILLs its node before its mark is answered is still counted as a crash; jobs leased behind it are not', { timeout: 90_000 }, async () => {
    let node = await start(true);
    const payloads = [
      ...Array.from({ length: BEFORE - 2 }, () => ({})),
      { gate: 'locked' },
      { gate: 'settled' },
      { kill: true },
      ...Array.from({ length: AFTER }, () => ({})),
    ];
    const res = await api(node.url, KEY, 'POST', '/v1/jobs', { jobs: payloads.map((payload) => ({ handler: 'h', payload })) });
    expect(res.status).toBe(202);
    const ids: string[] = res.body.jobs.map((j: { id: string }) => j.id);
    const [gated, previous, killer] = [ids[BEFORE - 2]!, ids[BEFORE - 1]!, ids[BEFORE]!];

    // Leased (ahead, in the buffer) behind the gated job, which holds the slot: lock the rows of the
    // killer and the job before it, so neither mark can commit.
    await waitFor(async () => (await job(ids[BEFORE + 1]!)).state === 'running', { timeoutMs: 20_000, message: 'the killer and a job behind it leased' });
    const lockKiller = await lockRow(killer);
    const lockPrevious = await lockRow(previous);
    try {
      expect((await job(killer)).marked, 'the test locked the row before the mark (else it proves nothing)').toBe(false);
      expect((await job(previous)).marked, 'the job before the killer was not marked yet').toBe(false);
      writeFileSync(join(dir, 'locked'), '');

      // The job before the killer is in the slot, its mark waiting for the test's lock. Let the mark commit
      // once every earlier job's completion is written; its handler returns once it sees the mark committed.
      await waitFor(async () => {
        const { rows } = await db.query(`SELECT count(*)::int AS n FROM ${schema}.jobs WHERE state = 'succeeded' AND id <= $1`, [gated]);
        return rows[0].n === BEFORE - 1;
      }, { timeoutMs: 20_000, message: 'the jobs before the killer\'s predecessor succeeded' });
      await lockPrevious.release();
      await waitFor(async () => (await job(previous)).marked, { timeoutMs: 10_000, message: 'the mark of the job before the killer committed' });
      writeFileSync(join(dir, 'settled'), '');

      // Its handler ran and killed the node while the mark could not have been answered.
      let timer: NodeJS.Timeout | undefined;
      const alive = new Promise((resolve) => (timer = setTimeout(() => resolve('still alive: its handler waited for the mark'), 20_000)));
      expect(await Promise.race([node.exited, alive]).finally(() => clearTimeout(timer))).toEqual({ code: null, signal: 'SIGKILL' });
      // The mark reached the server: its statement waits for the lock the test holds.
      const { rows: waiting } = await db.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock' AND query LIKE '%SET started_seq = j.lease_seq%'`,
        [`drover/${schema}`],
      );
      expect(waiting[0].n).toBe(1);
    } finally {
      await lockPrevious.release();
      await lockKiller.release();
    }
    // The dead node's backend runs the mark it had read and commits it.
    await waitFor(async () => (await job(killer)).marked, { timeoutMs: 10_000, message: 'the orphaned mark committed' });
    const leasedBehind = (await db.query(`SELECT id FROM ${schema}.jobs WHERE state = 'running' AND id > $1`, [killer])).rows.map((r) => String(r.id));
    expect(leasedBehind.length).toBeGreaterThan(0);

    // The restarted node reclaims its previous run's leases: a crash for the started handler, none for the rest.
    node = await start(false);
    await waitFor(async () => {
      const { rows } = await db.query(`SELECT count(*)::int AS n FROM ${schema}.jobs WHERE state = 'succeeded'`);
      return rows[0].n === ids.length;
    }, { timeoutMs: 30_000, intervalMs: 50, message: 'every job succeeded' });
    expect(await job(killer)).toMatchObject({ state: 'succeeded', crashes: 1, attempts: 2 });
    const { rows: attempts } = await db.query(`SELECT outcome FROM ${schema}.attempts WHERE job_id = $1 ORDER BY attempt`, [killer]);
    expect(attempts.map((a) => a.outcome)).toEqual(['crashed']); // its success is read from the job row (migration 9)
    // Besides it, only the job before it may count one: its handler had returned, its completion not yet written.
    const { rows: others } = await db.query(`SELECT id::text FROM ${schema}.jobs WHERE id <> $1 AND crashes > 0`, [killer]);
    expect(others.filter((r) => r.id !== previous)).toEqual([]);
    const { rows: released } = await db.query(`SELECT DISTINCT job_id FROM ${schema}.attempts WHERE outcome = 'released'`);
    expect(released.map((r) => String(r.job_id)).sort()).toEqual([...leasedBehind].sort());

    process.kill(node.pid, 'SIGTERM');
    expect(await node.exited).toEqual({ code: 0, signal: null });
  });
});
