/**
 * `ctx.step` in `isolation: 'thread'` handlers, with a TypeScript config
 * started the user's way (`bin/drover start`): the thread asks the main
 * thread (which holds the store and the lease) for every step; a step's
 * function runs in the thread; a wait suspends the job from inside the
 * thread and an event over HTTP wakes it; the step errors reach the job.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, killAllChildren, startChildNode, type ChildNode } from '../helpers/child-node.js';
import { waitFor } from '../helpers/wait-for.js';

const KEY = 'drv_durable_threads_admin_key_00001';
const root = mkdtempSync(join(tmpdir(), 'drover-durable-threads-'));

const CONFIG_TS = `
import { defineConfig, defineHandler } from 'drover';
import { isMainThread, threadId } from 'node:worker_threads';

const order = defineHandler<{ orderId: string }>({
  name: 'order',
  isolation: 'thread',
  async run(ctx) {
    const created = await ctx.step.run('create', () => ({ id: ctx.job.payload.orderId, thread: !isMainThread, threadId }));
    const paid = await ctx.step.waitForEvent<{ orderId: string; amount: number }>('paid', {
      event: ['payment.settled', 'payment.failed'],
      match: { 'data.orderId': created.id },
      timeoutMs: 60_000,
    });
    await ctx.step.sleep('cool-off', 50);
    const receipt = await ctx.step.run('receipt', () => 'r-' + paid?.data.amount);
    return { created, paid: paid && { name: paid.name, amount: paid.data.amount }, receipt, key: ctx.step.key('refund'), runThread: !isMainThread };
  },
});

const dupe = defineHandler({
  name: 'dupe',
  isolation: 'thread',
  async run(ctx) {
    await ctx.step.run('x', () => 1);
    await ctx.step.run('x', () => 2);
  },
});

const bigint = defineHandler({
  name: 'bigint',
  isolation: 'thread',
  async run(ctx) {
    await ctx.step.run('n', () => 10n);
  },
});

export default defineConfig({ handlers: [order, dupe, bigint] });
`;

let node: ChildNode;
beforeAll(async () => {
  const config = join(root, 'drover.config.ts');
  writeFileSync(config, CONFIG_TS);
  node = await startChildNode({ config, cwd: root, env: { DROVER_DATABASE_URL: join(root, 'drover.db'), DROVER_BOOTSTRAP_ADMIN_KEY: KEY }, timeoutMs: 30_000 });
});
afterAll(async () => {
  await killAllChildren();
  rmSync(root, { recursive: true, force: true });
});

async function create(handler: string, payload: unknown): Promise<string> {
  const res = await api(node.url, KEY, 'POST', '/v1/jobs', { handler, payload });
  expect(res.status).toBe(202);
  return res.body.id as string;
}

async function reaches(id: string, states: string[]): Promise<any> {
  return waitFor(async () => {
    const { body } = await api(node.url, KEY, 'GET', `/v1/jobs/${id}`);
    return states.includes(body.state) ? body : null;
  }, { timeoutMs: 30_000, message: `job ${id} ${states.join('|')}` });
}

describe('ctx.step in a thread handler', () => {
  it('runs steps in the thread, suspends on a wait and resumes with the event sent over HTTP', async () => {
    const id = await create('order', { orderId: 'o-7' });
    await reaches(id, ['suspended']);
    const sent = await api(node.url, KEY, 'POST', '/v1/events', { name: 'payment.settled', data: { orderId: 'o-7', amount: 30 } });
    expect(sent.status).toBeLessThan(300);
    const job = await reaches(id, ['succeeded', 'dead']);
    expect(job.state, job.lastError).toBe('succeeded');
    expect(job.result).toMatchObject({
      created: { id: 'o-7', thread: true },
      paid: { name: 'payment.settled', amount: 30 },
      receipt: 'r-30',
      key: `drover:${id}:refund`,
      runThread: true,
    });
  });

  it('fails the job with the clear error of a duplicate step name', async () => {
    const job = await reaches(await create('dupe', {}), ['dead']);
    expect(job.deadReason).toBe('non_retryable');
    expect(job.lastError).toMatch(/step "x" is asked for twice in one run/);
  });

  it('fails the job when a step returns what JSON cannot hold', async () => {
    const job = await reaches(await create('bigint', {}), ['dead']);
    expect(job.deadReason).toBe('non_retryable');
    expect(job.lastError).toMatch(/step "n" returned a value that cannot be stored as JSON/);
  });
});
