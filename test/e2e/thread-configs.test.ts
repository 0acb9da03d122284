/**
 * Thread isolation with every config format a user may write, started the
 * user's way (bin/drover start), from a directory outside the project that
 * has no node_modules: the config imports `drover` and gets this
 * installation. The README's format (.ts with defineConfig/defineHandler)
 * really enforces a thread handler's memory limit and hard timeout; .mts,
 * .js (ESM syntax, no package.json) and .mjs run thread and inline jobs. A
 * handler its thread cannot load stops the start, before any state exists.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { api, DROVER_BIN, killAllChildren, startChildNode, type ChildNode } from '../helpers/child-node.js';
import { waitFor } from '../helpers/wait-for.js';

const KEY = 'drv_thread_configs_admin_key_000001';
const root = mkdtempSync(join(tmpdir(), 'drover-thread-configs-'));
afterEach(killAllChildren);
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The README's format: typed handlers, a thread handler that hoards memory, one that never returns. */
const README_TS = `
import { defineConfig, defineHandler, NonRetryableError } from 'drover';

const echo = defineHandler<{ n: number }>({
  name: 'echo',
  isolation: 'thread',
  async run(ctx) {
    if (ctx.job.payload.n < 0) throw new NonRetryableError('negative');
    const { isMainThread } = await import('node:worker_threads');
    return { n: ctx.job.payload.n, thread: !isMainThread };
  },
});
const hog = defineHandler({
  name: 'hog',
  isolation: 'thread',
  limits: { memoryMb: 32 },
  retry: { maxAttempts: 1 },
  run() {
    const hoard: unknown[] = [];
    for (;;) hoard.push(new Array(100_000).fill({ n: hoard.length }));
  },
});
const spin = defineHandler({ name: 'spin', isolation: 'thread', timeoutMs: 300, retry: { maxAttempts: 1 }, run() { for (;;); } });
const inline = defineHandler({ name: 'inline', async run(ctx) { return { inline: ctx.job.payload }; } });

export default defineConfig({ handlers: [echo, hog, spin, inline], threads: { restartInitialMs: 10, restartMaxMs: 200 } });
`;

/** The same two handlers in each other format (ESM syntax throughout; .js sits in a directory with no package.json). */
const PLAIN = (types: boolean) => `
import { defineConfig } from 'drover';
import { isMainThread } from 'node:worker_threads';
export default defineConfig({
  handlers: [
    { name: 'echo', isolation: 'thread', run: async (ctx${types ? ': { job: { payload: unknown } }' : ''}) => ({ echoed: ctx.job.payload, thread: !isMainThread }) },
    { name: 'inline', run: async (ctx${types ? ': { job: { payload: unknown } }' : ''}) => ({ inline: ctx.job.payload }) },
  ],
});
`;

function writeConfig(file: string, source: string): string {
  const dir = mkdtempSync(join(root, 'etc-'));
  const path = join(dir, file);
  writeFileSync(path, source);
  return path;
}

async function start(config: string): Promise<ChildNode> {
  return startChildNode({ config, cwd: root, env: { DROVER_DATABASE_URL: join(root, `${Math.random().toString(36).slice(2)}.db`), DROVER_BOOTSTRAP_ADMIN_KEY: KEY }, timeoutMs: 30_000 });
}

async function runJob(node: ChildNode, handler: string, payload: unknown): Promise<any> {
  const created = await api(node.url, KEY, 'POST', '/v1/jobs', { handler, payload });
  expect(created.status).toBe(202);
  return waitFor(async () => {
    const { body } = await api(node.url, KEY, 'GET', `/v1/jobs/${created.body.id}`);
    return body.state === 'succeeded' || body.state === 'dead' ? body : null;
  }, { timeoutMs: 20_000, message: `${handler} job finished` });
}

describe('thread isolation with every config format, from a config outside the project', () => {
  it('README format (.ts importing drover): thread jobs run, the memory limit and the hard timeout are enforced', { timeout: 60_000 }, async () => {
    const node = await start(writeConfig('drover.config.ts', README_TS));
    expect((await runJob(node, 'echo', { n: 7 })).result).toEqual({ n: 7, thread: true });
    expect((await runJob(node, 'inline', { a: 1 })).result).toEqual({ inline: { a: 1 } });
    const negative = await runJob(node, 'echo', { n: -1 });
    expect(negative.state).toBe('dead');
    expect(negative.attemptCount).toBe(1); // NonRetryableError from 'drover' is recognised in a thread

    const hog = await runJob(node, 'hog', {});
    expect(hog.state).toBe('dead');
    expect(hog.attempts.at(-1).error).toMatch(/MemoryLimitError: handler exceeded its memory limit of 32 MiB/);
    const spin = await runJob(node, 'spin', {});
    expect(spin.state).toBe('dead');
    expect(spin.attempts.at(-1).error).toMatch(/TimeoutError: handler did not finish within its timeout of 300 ms/);
    // The node outlived both, and the threads were replaced.
    expect((await runJob(node, 'echo', { n: 8 })).result).toEqual({ n: 8, thread: true });
  });

  for (const file of ['drover.config.mts', 'drover.config.js', 'drover.config.mjs']) {
    it(`${file}: thread and inline jobs run`, { timeout: 40_000 }, async () => {
      const node = await start(writeConfig(file, PLAIN(file.endsWith('.mts'))));
      expect((await runJob(node, 'echo', { f: file })).result).toEqual({ echoed: { f: file }, thread: true });
      expect((await runJob(node, 'inline', { f: file })).result).toEqual({ inline: { f: file } });
    });
  }
});

describe('a thread handler that cannot be loaded', () => {
  it('stops the start with a message naming the handler and the cause; no store is created', { timeout: 30_000 }, async () => {
    // Loads in the main thread (so the config itself is valid), fails in a worker thread.
    const config = writeConfig('drover.config.ts', `
import { defineConfig } from 'drover';
import { isMainThread } from 'node:worker_threads';
if (!isMainThread) throw new Error('this module needs the main thread (it opens a device)');
export default defineConfig({ handlers: [{ name: 'device', isolation: 'thread', run: async () => 'ok' }] });
`);
    const data = mkdtempSync(join(root, 'data-'));
    const child = spawn(process.execPath, [DROVER_BIN, 'start', '--config', config, '--port', '0'], {
      env: { ...process.env, DROVER_DATABASE_URL: join(data, 'sub', 'drover.db'), DROVER_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(78);
    expect(out).toMatch(/isolation: 'thread' handlers cannot be loaded in a worker thread, so the node did not start.*device: this module needs the main thread/);
    expect(out).not.toMatch(/drover ready|admin key/);
    expect(existsSync(join(data, 'sub'))).toBe(false);
    expect(readdirSync(data)).toEqual([]);
  });
});

