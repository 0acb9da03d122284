/**
 * docs/operations.md, "Worker-only nodes": a TypeScript config compiled once
 * with esbuild starts without tsx (about 35 MiB of a worker's memory). The two
 * commands are read from the docs and run as written on the example config,
 * in a directory outside the repository, as a deploy would.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { api, killAllChildren, startChildNode } from '../helpers/child-node.js';
import { ADMIN_KEY } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MODULE_LOG = fileURLToPath(new URL('../helpers/module-log.mjs', import.meta.url));

/** The documented commands: the sh block that compiles the config. */
function documentedCommands(): { compile: string[]; start: string[] } {
  const docs = readFileSync(join(ROOT, 'docs/operations.md'), 'utf8');
  const block = [...docs.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.includes('esbuild drover.config.ts'));
  if (!block) throw new Error('docs/operations.md has no sh block compiling drover.config.ts with esbuild');
  const [compile, start] = block.trim().split('\n').map((line) => line.trim().split(/\s+/));
  expect(compile!.slice(0, 2)).toEqual(['npx', 'esbuild']);
  expect(start!.slice(0, 2)).toEqual(['drover', 'start']);
  return { compile: compile!.slice(2), start: start!.slice(2) };
}

let dir = '';
afterEach(async () => {
  await killAllChildren();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a TypeScript config compiled as docs/operations.md says', () => {
  it('starts worker-only without tsx, and its handlers run the example event', { timeout: 60_000 }, async () => {
    const { compile, start } = documentedCommands();
    dir = mkdtempSync(join(tmpdir(), 'drover-compiled-config-'));
    cpSync(join(ROOT, 'examples/drover.config.ts'), join(dir, 'drover.config.ts'));
    // `npx esbuild` in a project with Drover installed finds esbuild in its node_modules/.bin: here, the repository's.
    const built = spawnSync(join(ROOT, 'node_modules/.bin/esbuild'), compile, { cwd: dir, encoding: 'utf8' });
    expect(built.status, built.stderr).toBe(0);

    const configAt = start.indexOf('--config');
    const config = join(dir, start[configAt + 1]!);
    const flags = start.filter((_, i) => i !== configAt && i !== configAt + 1);
    const log = join(dir, 'modules.txt');
    const env = { DROVER_DATABASE_URL: join(dir, 'drover.db'), DROVER_BOOTSTRAP_ADMIN_KEY: ADMIN_KEY };
    const worker = await startChildNode({
      config,
      cwd: dir,
      args: flags,
      env: { ...env, DROVER_TEST_MODULE_LOG: log, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${MODULE_LOG}`.trim() },
    });
    expect(worker.stdout.find((l) => l.startsWith('drover ready'))).toMatch(/handlers=4 .*api=off/);
    const loaded = readFileSync(log, 'utf8').split('\n');
    expect(loaded.some((m) => /node_modules\/better-sqlite3\//.test(m)), 'the module log works').toBe(true);
    expect(loaded.filter((m) => /node_modules\/(tsx|esbuild)\//.test(m))).toEqual([]);
    worker.child.kill('SIGTERM');
    expect((await worker.exited).code).toBe(0);

    // The same compiled config on an API node runs the example's event through its three handlers.
    const node = await startChildNode({ config, cwd: dir, env });
    const sent = await api(node.url, ADMIN_KEY, 'POST', '/v1/events', { name: 'order.created', data: { orderId: 'o-1', total: 120, customer: { country: 'DE' } }, id: 'evt-1' });
    expect(sent.status).toBe(202);
    const ids: string[] = sent.body.jobs.map((job: { id: string }) => job.id);
    expect(sent.body.jobs.map((job: { handler: string }) => job.handler).sort()).toEqual(['audit-order-events', 'reserve-stock', 'review-large-order']);
    const states = await waitFor(async () => {
      const jobs = await Promise.all(ids.map((id) => api(node.url, ADMIN_KEY, 'GET', `/v1/jobs/${id}`)));
      return jobs.every((job) => job.body.state === 'succeeded') ? jobs.map((job) => job.body.state) : null;
    }, { timeoutMs: 20_000, message: 'the example event’s three jobs succeeded' });
    expect(states).toEqual(['succeeded', 'succeeded', 'succeeded']);
  });
});
