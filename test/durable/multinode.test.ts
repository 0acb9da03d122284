/**
 * PostgreSQL, two `drover start` processes on one schema: a suspended job
 * holds no lease, so when the node that ran it dies (SIGKILL) the other node
 * resumes it, a sleep when its time comes and a wait when its event arrives
 * (sent to the survivor), with no dead-node detection involved. Each step's
 * side effect is done once.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { api, killAllChildren, startChildNode, type ChildNode } from '../helpers/child-node.js';
import { dropPgSchema, PG_URL } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';

const KEY = 'drv_durable_multinode_admin_key_001';
const root = mkdtempSync(join(tmpdir(), 'drover-durable-mn-'));
const schema = `drover_dmn_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
afterAll(async () => {
  await killAllChildren();
  await dropPgSchema(schema);
  rmSync(root, { recursive: true, force: true });
});

const CONFIG_TS = `
import { appendFileSync } from 'node:fs';
import { defineConfig, defineHandler } from 'drover';

const node = process.env.DROVER_NODE_ID as string;
const note = (line: string) => appendFileSync(process.env.STEP_LOG as string, line + '\\n');

const nap = defineHandler<{ tag: string; until: number }>({
  name: 'nap',
  async run(ctx) {
    const { tag } = ctx.job.payload;
    await ctx.step.run('before', () => note(tag + ' before ' + node));
    await ctx.step.sleep('nap', { until: ctx.job.payload.until });
    await ctx.step.run('after', () => note(tag + ' after ' + node));
    return node;
  },
});

const wait = defineHandler<{ tag: string }>({
  name: 'wait',
  async run(ctx) {
    const { tag } = ctx.job.payload;
    await ctx.step.run('before', () => note(tag + ' before ' + node));
    const event = await ctx.step.waitForEvent<{ tag: string }>('go', { event: 'go', match: { 'data.tag': tag }, timeoutMs: 120_000 });
    await ctx.step.run('after', () => note(tag + ' after ' + node));
    return { node, got: event?.data.tag };
  },
});

export default defineConfig({ handlers: [nap, wait] });
`;

function lines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}

describe('a suspended job when its node dies (PostgreSQL, two nodes)', () => {
  it('resumes on the other node: a sleep when its time comes, a wait when its event arrives there', { timeout: 120_000 }, async () => {
    const config = join(root, 'drover.config.ts');
    writeFileSync(config, CONFIG_TS);
    const log = join(root, 'steps.log');
    const env = (id: string) => ({
      DROVER_DATABASE_URL: PG_URL,
      DROVER_PG_SCHEMA: schema,
      DROVER_NODE_ID: id,
      DROVER_BOOTSTRAP_ADMIN_KEY: KEY,
      STEP_LOG: log,
    });
    // One after the other: the first creates the schema and the admin key.
    const a = await startChildNode({ config, cwd: root, env: env('node-a'), timeoutMs: 30_000 });
    const b = await startChildNode({ config, cwd: root, env: env('node-b'), timeoutMs: 30_000 });
    const nodes: Record<string, ChildNode> = { 'node-a': a, 'node-b': b };

    const jobs: Array<{ id: string; tag: string; handler: string }> = [];
    // Every sleeper wakes at the same time, well after the kill below.
    const until = Date.now() + 10_000;
    for (let i = 0; i < 4; i++) {
      for (const handler of ['nap', 'wait']) {
        const tag = `${handler}-${i}`;
        const res = await api(i % 2 ? b.url : a.url, KEY, 'POST', '/v1/jobs', { handler, payload: { tag, until } });
        expect(res.status).toBe(202);
        jobs.push({ id: res.body.id, tag, handler });
      }
    }
    const stateOf = async (id: string) => (await api(b.url, KEY, 'GET', `/v1/jobs/${id}`)).body.state as string;
    await waitFor(async () => (await Promise.all(jobs.map((j) => stateOf(j.id)))).every((s) => s === 'suspended'), {
      timeoutMs: 30_000,
      message: 'every job suspended',
    });
    expect(Date.now()).toBeLessThan(until);

    // Kill the node that ran the first sleeper; the other one must finish its jobs.
    const ranOn = (tag: string) => lines(log).find((l) => l.startsWith(`${tag} before `))!.split(' ')[2]!;
    const victim = ranOn(jobs[0]!.tag);
    const survivor = victim === 'node-a' ? 'node-b' : 'node-a';
    process.kill(nodes[victim]!.pid, 'SIGKILL');
    await nodes[victim]!.exited;
    const alive = nodes[survivor]!;

    for (const job of jobs.filter((j) => j.handler === 'wait')) {
      const sent = await api(alive.url, KEY, 'POST', '/v1/events', { name: 'go', data: { tag: job.tag } });
      expect(sent.status).toBeLessThan(300);
    }
    for (const job of jobs) {
      const done = await waitFor(async () => {
        const { body } = await api(alive.url, KEY, 'GET', `/v1/jobs/${job.id}`);
        return body.state === 'succeeded' || body.state === 'dead' ? body : null;
      }, { timeoutMs: 30_000, message: `${job.tag} finished` });
      expect(done.state, done.lastError).toBe('succeeded');
    }
    const moved = jobs.filter((j) => ranOn(j.tag) === victim);
    expect(moved.length).toBeGreaterThan(0);
    for (const job of jobs) {
      const mine = lines(log).filter((l) => l.startsWith(`${job.tag} `));
      // Each step's side effect once; the second half ran on the survivor for every job the victim had started.
      expect(mine.filter((l) => l.includes(' before '))).toHaveLength(1);
      expect(mine.filter((l) => l.includes(' after '))).toEqual([`${job.tag} after ${survivor}`]);
    }
    process.kill(alive.pid, 'SIGTERM');
    expect(await alive.exited).toEqual({ code: 0, signal: null });
  });
});
