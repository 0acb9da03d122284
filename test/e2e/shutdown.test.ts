/**
 * Shutdown keeps its deadline (docs/operations.md "Shutdown"): a real
 * `drover start` child gets SIGTERM while a handler ignores its signal, while
 * a handler finishes just as it is aborted, and while nobody reads its stdout.
 * It must exit within `shutdown.graceMs` + the allowance, with exit code 0 and
 * every job either recorded or back in the queue. Durations are printed.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { LOG_FLUSH_MS } from '../../src/obs/logger.js';
import { SHUTDOWN_ALLOWANCE_MS } from '../../src/runtime/shutdown.js';
import { api, killAllChildren, startChildNode, type ChildNode } from '../helpers/child-node.js';
import { waitFor } from '../helpers/wait-for.js';

const CONFIG = fileURLToPath(new URL('../fixtures/shutdown.config.mjs', import.meta.url));
const KEY = 'drv_shutdown_test_admin_key_0123456789';
const GRACE_MS = 1_000;

const root = mkdtempSync(join(tmpdir(), 'drover-shutdown-'));
let run = 0;
afterEach(async () => {
  await killAllChildren();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function start(env: Record<string, string> = {}): Promise<{ node: ChildNode; db: string; record: string }> {
  const dir = join(root, `run-${++run}`);
  const db = join(dir, 'drover.db');
  const record = join(dir, 'record.log');
  mkdirSync(dir);
  const node = await startChildNode({
    config: CONFIG,
    env: { DROVER_DATABASE_URL: db, DROVER_BOOTSTRAP_ADMIN_KEY: KEY, RECORD_FILE: record, DROVER_SHUTDOWN_GRACE_MS: String(GRACE_MS), ...env },
  });
  return { node, db, record };
}

function lines(record: string): string[] {
  return existsSync(record) ? readFileSync(record, 'utf8').split('\n').filter(Boolean) : [];
}

async function enqueue(node: ChildNode, handler: string, payload: unknown = {}): Promise<string> {
  const res = await api(node.url, KEY, 'POST', '/v1/jobs', { jobs: [{ handler, payload }] });
  expect(res.status).toBe(202);
  return String(res.body.jobs[0].id);
}

/** SIGTERM the node and time how long it takes to exit. */
async function terminate(node: ChildNode): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
  const sent = performance.now();
  process.kill(node.pid, 'SIGTERM');
  const exit = await node.exited;
  return { ...exit, ms: Math.round(performance.now() - sent) };
}

function jobRow(db: string, id: string): { state: string; attempts: number; crashes: number; lease_token: string | null } {
  const conn = new Database(db, { readonly: true });
  try {
    return conn.prepare('SELECT state, attempts, crashes, lease_token FROM jobs WHERE id = ?').get(Number(id)) as never;
  } finally {
    conn.close();
  }
}

function attempts(db: string, id: string): string[] {
  const conn = new Database(db, { readonly: true });
  try {
    return (conn.prepare('SELECT outcome FROM attempts WHERE job_id = ? ORDER BY attempt').all(Number(id)) as Array<{ outcome: string }>).map((r) => r.outcome);
  } finally {
    conn.close();
  }
}

const deadline = GRACE_MS + SHUTDOWN_ALLOWANCE_MS;

describe('shutdown keeps its deadline', { timeout: 30_000 }, () => {
  for (const handler of ['stubborn', 'stubborn-thread']) {
    it(`abandons a handler that ignores its signal (${handler}), releases its lease and exits 0 in time`, async () => {
      const { node, db, record } = await start();
      const id = await enqueue(node, handler);
      await waitFor(() => lines(record).includes(`start ${id}`), { message: 'the handler started' });
      const exit = await terminate(node);
      console.log(`[shutdown] ${handler}: SIGTERM -> exit ${exit.code} in ${exit.ms} ms (grace ${GRACE_MS} ms, deadline ${deadline} ms)`);
      expect(exit).toMatchObject({ code: 0, signal: null });
      expect(exit.ms).toBeLessThan(deadline);
      // Back in the queue, its attempt not spent and not counted as a crash.
      expect(jobRow(db, id)).toEqual({ state: 'queued', attempts: 0, crashes: 0, lease_token: null });
      expect(attempts(db, id)).toEqual(['released']);
    });
  }

  it('records a handler that succeeds as shutdown aborts it as succeeded, once', async () => {
    const { node, db, record } = await start();
    const id = await enqueue(node, 'finisher');
    await waitFor(() => lines(record).includes(`start ${id}`), { message: 'the handler started' });
    const exit = await terminate(node);
    console.log(`[shutdown] finisher: SIGTERM -> exit ${exit.code} in ${exit.ms} ms`);
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(lines(record)).toEqual([`start ${id}`, `done ${id}`]);
    expect(jobRow(db, id)).toMatchObject({ state: 'succeeded', attempts: 1 });
    expect(attempts(db, id)).toEqual(['succeeded']);
  });

  for (const reader of ['closed', 'stopped'] as const) {
    it(`exits in time when its stdout reader has ${reader === 'closed' ? 'gone away' : 'stopped reading'}`, async () => {
      const { node, db, record } = await start();
      if (reader === 'closed') node.child.stdout!.destroy();
      else node.child.stdout!.pause();
      // Far more than a pipe holds; for the stopped reader, more than the logger keeps waiting (16 MiB): the rest is dropped and counted.
      const id = await enqueue(node, 'chatty', { lines: reader === 'closed' ? 1_000 : 20_000 });
      await waitFor(() => lines(record).includes(`done ${id}`), { message: 'the handler wrote its log lines' });
      await waitFor(() => jobRow(db, id).state === 'succeeded', { message: 'the job succeeded' });
      if (reader === 'stopped') {
        const scrape = await (await fetch(`${node.url}/metrics`)).text();
        const dropped = Number(/^drover_log_lines_dropped_total (\d+)/m.exec(scrape)?.[1]);
        console.log(`[shutdown] stdout reader stopped: ${dropped} of 20000 log lines dropped`);
        expect(dropped).toBeGreaterThan(0);
      }
      const exit = await terminate(node);
      console.log(`[shutdown] stdout reader ${reader}: SIGTERM -> exit ${exit.code} in ${exit.ms} ms`);
      expect(exit.ms).toBeLessThan(deadline);
      expect(exit).toMatchObject({ code: 0, signal: null });
    });
  }

  it('a second signal forces the exit at once, even with a stdout nobody reads', async () => {
    const { node, db, record } = await start({ DROVER_SHUTDOWN_GRACE_MS: '20000' });
    node.child.stdout!.pause();
    const chatty = await enqueue(node, 'chatty', { lines: 1_000 });
    await waitFor(() => lines(record).includes(`done ${chatty}`), { message: 'the chatty handler wrote its log lines' });
    const id = await enqueue(node, 'stubborn');
    await waitFor(() => lines(record).includes(`start ${id}`), { message: 'the handler started' });
    process.kill(node.pid, 'SIGTERM');
    await waitFor(async () => (await fetch(`${node.url}/health/ready`).catch(() => null))?.status === 503, { message: 'the node is draining' });
    const exit = await terminate(node);
    console.log(`[shutdown] second SIGTERM -> exit ${exit.code} in ${exit.ms} ms`);
    expect(exit).toMatchObject({ code: 130, signal: null });
    // At once, but for the final log flush to the full pipe (bounded by LOG_FLUSH_MS).
    expect(exit.ms).toBeLessThan(LOG_FLUSH_MS + 1_000);
    // Forced: the lease stays with the dead process and is reclaimed at the next start.
    expect(jobRow(db, id).state).toBe('running');
  });
});
