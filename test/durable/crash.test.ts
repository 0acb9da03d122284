/**
 * The step guarantees against SIGKILL, with a TypeScript config started the
 * user's way (`bin/drover start`), for an inline and an `isolation: 'thread'`
 * handler side by side, on each engine:
 * - killed after a step's side effect but before its result was stored, the
 *   step runs again (at least once);
 * - killed after its result was stored, it never runs again;
 * - killed while the job is suspended (a sleep), the job resumes after the
 *   restart and finishes, each step's side effect done the number of times
 *   above.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { api, killAllChildren, startChildNode, type ChildNode } from '../helpers/child-node.js';
import { dropPgSchema, PG_URL } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';

const KEY = 'drv_durable_crash_admin_key_0000001';
const root = mkdtempSync(join(tmpdir(), 'drover-durable-crash-'));
afterEach(killAllChildren);
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Each handler notes every side effect (and the code outside steps) in STEP_LOG, then hangs where the test kills the node. */
const CONFIG_TS = `
import { appendFileSync } from 'node:fs';
import { defineConfig, defineHandler } from 'drover';

const note = (line: string) => appendFileSync(process.env.STEP_LOG as string, line + '\\n');
const hang = () => new Promise<never>(() => undefined);

const crashy = (isolation: 'inline' | 'thread') => defineHandler<{ tag: string }>({
  name: 'crashy-' + isolation,
  isolation,
  retry: { maxAttempts: 6, backoff: { initialMs: 10, jitter: 'none' } },
  async run(ctx) {
    const { tag } = ctx.job.payload;
    const attempt = ctx.job.attempt;
    const a = await ctx.step.run('a', async () => {
      note(tag + ' a ' + attempt);
      if (attempt === 1) await hang(); // killed here: side effect done, result not stored
      return 'A';
    });
    note(tag + ' after-a ' + attempt);
    if (attempt === 2) await hang(); // killed here: a's result is stored
    const b = await ctx.step.run('b', () => {
      note(tag + ' b ' + attempt);
      return 'B';
    });
    await ctx.step.sleep('nap', Number(process.env.NAP_MS));
    note(tag + ' woke ' + attempt);
    return a + b;
  },
});

export default defineConfig({ handlers: [crashy('inline'), crashy('thread')] });
`;

function lines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}

async function stateOf(node: ChildNode, id: string): Promise<string> {
  const { body } = await api(node.url, KEY, 'GET', `/v1/jobs/${id}`);
  return body.state as string;
}

async function pgSchema(): Promise<{ env: Record<string, string>; drop: () => Promise<void> }> {
  const schema = `drover_dc_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  return {
    env: { DROVER_DATABASE_URL: PG_URL, DROVER_PG_SCHEMA: schema },
    drop: () => dropPgSchema(schema),
  };
}

describe.each(['sqlite', 'postgres'] as const)('durable steps under SIGKILL (%s)', (engine) => {
  it('re-runs a step killed before its result was stored, never one stored, and resumes a suspended job after a restart', { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(root, `${engine}-`));
    const config = join(dir, 'drover.config.ts');
    writeFileSync(config, CONFIG_TS);
    const log = join(dir, 'steps.log');
    const store = engine === 'sqlite' ? { env: { DROVER_DATABASE_URL: join(dir, 'drover.db') }, drop: async () => undefined } : await pgSchema();
    // A fixed node id: the restarted node takes its own leases back at once (PostgreSQL would otherwise wait for dead-node detection).
    const env = { ...store.env, DROVER_NODE_ID: `durable-crash-${engine}`, DROVER_BOOTSTRAP_ADMIN_KEY: KEY, STEP_LOG: log, NAP_MS: '5000' };
    const start = () => startChildNode({ config, cwd: dir, env, timeoutMs: 30_000 });
    try {
      let node = await start();
      const ids: Record<string, string> = {};
      for (const isolation of ['inline', 'thread']) {
        const created = await api(node.url, KEY, 'POST', '/v1/jobs', { handler: `crashy-${isolation}`, payload: { tag: isolation } });
        expect(created.status).toBe(202);
        ids[isolation] = created.body.id;
      }
      const restart = async (until: string[], what: string) => {
        await waitFor(() => until.every((line) => lines(log).includes(line)), { timeoutMs: 30_000, message: what });
        process.kill(node.pid, 'SIGKILL');
        await node.exited;
        node = await start();
      };

      // 1. Killed inside step a, after its side effect.
      await restart(['inline a 1', 'thread a 1'], 'both jobs inside step a');
      // 2. Killed after step a's result was stored.
      await restart(['inline after-a 2', 'thread after-a 2'], 'both jobs past step a');
      // 3. Killed while both jobs sleep.
      await waitFor(async () => (await stateOf(node, ids.inline!)) === 'suspended' && (await stateOf(node, ids.thread!)) === 'suspended', {
        timeoutMs: 30_000,
        message: `both jobs suspended (${await stateOf(node, ids.inline!)}, ${await stateOf(node, ids.thread!)}; ${lines(log).join(', ')})`,
      });
      process.kill(node.pid, 'SIGKILL');
      await node.exited;
      node = await start();

      for (const isolation of ['inline', 'thread']) {
        const job = await waitFor(async () => {
          const { body } = await api(node.url, KEY, 'GET', `/v1/jobs/${ids[isolation]}`);
          return body.state === 'succeeded' || body.state === 'dead' ? body : null;
        }, { timeoutMs: 30_000, message: `${isolation} job finished` });
        expect(job.state, JSON.stringify(job)).toBe('succeeded');
        expect(job.result).toBe('AB');
        const mine = lines(log).filter((line) => line.startsWith(`${isolation} `)).map((line) => line.slice(isolation.length + 1));
        // a ran on attempts 1 (killed before storing) and 2; b once; the code outside steps on every run after 1.
        // The run after the sleep is attempt 3 again: a suspension spends no attempt.
        expect(mine.filter((l) => l.startsWith('a '))).toEqual(['a 1', 'a 2']);
        expect(mine.filter((l) => l.startsWith('b '))).toEqual(['b 3']);
        expect(mine.filter((l) => l.startsWith('after-a '))).toEqual(['after-a 2', 'after-a 3', 'after-a 3']);
        expect(mine.filter((l) => l.startsWith('woke '))).toEqual(['woke 3']);
      }
      process.kill(node.pid, 'SIGTERM');
      expect(await node.exited).toEqual({ code: 0, signal: null });
    } finally {
      await killAllChildren();
      await store.drop();
    }
  });
});
