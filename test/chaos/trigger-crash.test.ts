/**
 * Debounce and batch across a crash: events are acknowledged, the node is
 * SIGKILLed before their window ends, and the node started again on the same
 * SQLite file runs each merged job exactly once, with every acknowledged event
 * (an event acknowledged after the restart still joins the open batch).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { api, killAllChildren, startChildNode } from '../helpers/child-node.js';
import { waitFor } from '../helpers/wait-for.js';

const CONFIG = fileURLToPath(new URL('../fixtures/trigger-crash.config.mjs', import.meta.url));
const KEY = 'drv_trigger_crash_admin_key_0123456789';
/** Long enough that the kill and the restart both happen inside it. */
const WINDOW_MS = 12_000;

const dir = mkdtempSync(join(tmpdir(), 'drover-trigger-crash-'));
afterAll(async () => {
  await killAllChildren();
  rmSync(dir, { recursive: true, force: true });
});

function runs(file: string): Array<{ handler: string; job: string; payload: any }> {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line));
}

describe('trigger controls across a crash', () => {
  it('a SIGKILLed node, started again, runs each pending merged job once with every acknowledged event', { timeout: 60_000 }, async () => {
    const record = join(dir, 'runs.log');
    const env = { DROVER_DATABASE_URL: join(dir, 'drover.db'), DROVER_BOOTSTRAP_ADMIN_KEY: KEY, RECORD_FILE: record, WINDOW_MS: String(WINDOW_MS) };
    let node = await startChildNode({ config: CONFIG, env });
    const opened = Date.now();
    const acked: string[] = [];
    for (let request = 0; request < 5; request++) {
      const events = Array.from({ length: 10 }, (_, i) => ({ name: 'row.added', data: { n: request * 10 + i }, id: `row-${request * 10 + i}` }));
      const res = await api(node.url, KEY, 'POST', '/v1/events', { events });
      expect(res.status).toBe(202);
      acked.push(...res.body.events.map((e: any) => e.id));
    }
    for (let rev = 1; rev <= 3; rev++) expect((await api(node.url, KEY, 'POST', '/v1/events', { name: 'doc.edited', data: { rev } })).status).toBe(202);
    process.kill(node.pid, 'SIGKILL');
    await node.exited;
    expect(runs(record)).toEqual([]);

    node = await startChildNode({ config: CONFIG, env });
    const late = await api(node.url, KEY, 'POST', '/v1/events', { name: 'row.added', data: { n: 50 }, id: 'row-50' });
    // Still inside the window (checked, not assumed): the event joins the batch opened before the crash.
    expect(Date.now() - opened).toBeLessThan(WINDOW_MS);
    expect(late.body.jobs[0].trigger).toEqual({ kind: 'batch', merged: true });
    acked.push('row-50');

    await waitFor(() => runs(record).length === 2, { timeoutMs: 30_000, intervalMs: 50, message: 'the batch and the debounced job ran' });
    await waitFor(async () => {
      const res = await api(node.url, KEY, 'GET', '/v1/jobs?limit=10');
      return res.body.jobs.length === 2 && res.body.jobs.every((j: any) => j.state === 'succeeded' && j.attemptCount === 1);
    }, { message: 'both jobs succeeded on their first attempt' });
    const [batch] = runs(record).filter((r) => r.handler === 'batched');
    expect(batch!.payload.events.map((e: any) => e.id)).toEqual(acked);
    expect(runs(record).filter((r) => r.handler === 'debounced').map((r) => r.payload)).toEqual([{ rev: 3 }]);
    expect(runs(record)).toHaveLength(2);
  });
});
