/**
 * `drover start --low-memory` (issue 24, worker RSS): the mode is applied
 * before the config loads, the start log says what it set and whether the
 * young generation is capped too (that one needs a `node` flag at process
 * start), and the node runs jobs as usual. How much memory it saves is the
 * bench's to measure (`node bench/run.mjs --only worker-only`), not a test's.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HEAP_GROWING_PERCENT, launchWantsLowMemory, SEMI_SPACE_MB, semiSpaceFlag, wantsLowMemory } from '../../src/cli/low-memory.js';
import { LOW_MEMORY_LEASE_AHEAD } from '../../src/runtime/lease-window.js';
import { LOW_MEMORY_SQLITE_CACHE_KIB } from '../../src/store/open.js';
import { api, killAllChildren, startChildNode, type ChildNode } from '../helpers/child-node.js';
import { ADMIN_KEY } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';

let dir = '';
afterEach(async () => {
  await killAllChildren();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function lowMemoryNode(options: { args?: string[]; env?: Record<string, string> }): Promise<ChildNode> {
  dir = mkdtempSync(join(tmpdir(), 'drover-low-memory-'));
  writeFileSync(join(dir, 'drover.config.mjs'), "export default { handlers: [{ name: 'noop', run() {} }] };\n");
  return startChildNode({
    config: join(dir, 'drover.config.mjs'),
    cwd: dir,
    ...(options.args ? { args: options.args } : {}),
    env: { DROVER_DATABASE_URL: join(dir, 'drover.db'), DROVER_BOOTSTRAP_ADMIN_KEY: ADMIN_KEY, DROVER_LOG_LEVEL: 'info', ...options.env },
  });
}

/** The start log's low-memory line, once it is printed (after the ready line). */
async function lowMemoryLine(node: ChildNode): Promise<Record<string, unknown>> {
  const line = await waitFor(() => node.stdout.find((l) => l.includes('low-memory mode')), { timeoutMs: 5_000, message: 'the low-memory log line' });
  return JSON.parse(line) as Record<string, unknown>;
}

describe('drover start --low-memory', () => {
  it('caps old-space growth and the young generation\'s growth, names the node flag that caps it from the start, and runs jobs', async () => {
    const node = await lowMemoryNode({ args: ['--low-memory'], env: { NODE_OPTIONS: '' } });
    const line = await lowMemoryLine(node);
    // Set by bin/drover before the CLI's modules loaded, not by the command after.
    expect(line).toMatchObject({ heap_growing_percent: HEAP_GROWING_PERCENT, max_semi_space_mb: null, semi_space_cap_mb: SEMI_SPACE_MB, applied_at: 'launch', sqlite_cache_kib: LOW_MEMORY_SQLITE_CACHE_KIB, lease_ahead: LOW_MEMORY_LEASE_AHEAD });
    expect(line.msg).toContain('NODE_OPTIONS=--max-semi-space-size=4');

    const enqueued = await api(node.url, ADMIN_KEY, 'POST', '/v1/jobs', { handler: 'noop', payload: {} });
    expect(enqueued.status).toBe(202);
    const id = enqueued.body.id as string;
    await waitFor(async () => (await api(node.url, ADMIN_KEY, 'GET', `/v1/jobs/${id}`)).body.state === 'succeeded' || undefined, {
      timeoutMs: 10_000,
      message: 'the job succeeded',
    });
    node.child.kill('SIGTERM');
    expect((await node.exited).code).toBe(0);
  });

  it('DROVER_LOW_MEMORY=true turns it on, and the log reports the young-generation cap given in NODE_OPTIONS', async () => {
    const node = await lowMemoryNode({ env: { DROVER_LOW_MEMORY: 'true', NODE_OPTIONS: '--max-semi-space-size=4' } });
    expect(await lowMemoryLine(node)).toMatchObject({ heap_growing_percent: HEAP_GROWING_PERCENT, max_semi_space_mb: 4, semi_space_cap_mb: null, applied_at: 'launch' });
    node.child.kill('SIGTERM');
    expect((await node.exited).code).toBe(0);
  });

  it('is off unless asked for', async () => {
    const node = await lowMemoryNode({ env: { NODE_OPTIONS: '' } });
    // A job run after start: the start log (where the line would be) is written by then.
    const enqueued = await api(node.url, ADMIN_KEY, 'POST', '/v1/jobs', { handler: 'noop', payload: {} });
    await waitFor(async () => (await api(node.url, ADMIN_KEY, 'GET', `/v1/jobs/${enqueued.body.id}`)).body.state === 'succeeded' || undefined, {
      timeoutMs: 10_000,
      message: 'the job succeeded',
    });
    expect(node.stdout.some((l) => l.includes('"msg":"'))).toBe(true);
    expect(node.stdout.filter((l) => l.includes('low-memory mode'))).toEqual([]);
    node.child.kill('SIGTERM');
    expect((await node.exited).code).toBe(0);
  });
});

describe('capYoungGeneration', () => {
  /** A node process that keeps ~1 MiB of young objects alive while allocating, yielding to the event loop as a node does; its new space's size (MiB) at the end. */
  const newSpaceAfterChurn = (capMb: number | null): number => {
    const script = `
      import v8 from 'node:v8';
      ${capMb === null ? '' : `(await import(${JSON.stringify(new URL('../../dist/cli/low-memory.js', import.meta.url).href)})).capYoungGeneration(${capMb});`}
      const ring = new Array(2000);
      for (let i = 0; i < 400000; i++) {
        ring[i % ring.length] = { i, a: new Array(16).fill(i) };
        if (i % 1000 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      process.stdout.write(String(v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size / 2 ** 20));`;
    return Number(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' }, timeout: 20_000 }));
  };

  it('stops the semi-spaces growing at the cap without the node flag (V8 grows them to 16 MiB each)', () => {
    expect(newSpaceAfterChurn(null)).toBeGreaterThan(8);
    // Two semi-spaces of 2 MiB, or one doubling past it (a growth between two GC checks).
    expect(newSpaceAfterChurn(2)).toBeLessThanOrEqual(8);
  });
});

describe('low-memory helpers', () => {
  it('reads --max-semi-space-size from the process flags or NODE_OPTIONS, the later one winning', () => {
    expect(semiSpaceFlag([], undefined)).toBeNull();
    expect(semiSpaceFlag([], '--max-semi-space-size=4')).toBe(4);
    expect(semiSpaceFlag(['--max_semi_space_size=2'], '--max-semi-space-size=4 --enable-source-maps')).toBe(2);
    expect(semiSpaceFlag(['--max-old-space-size=512'], '--min-semi-space-size=1')).toBeNull();
  });

  it('bin/drover sets it at launch for `start` only', () => {
    expect(launchWantsLowMemory(['start', '--config', 'x.ts', '--low-memory'], {})).toBe(true);
    expect(launchWantsLowMemory(['start'], { DROVER_LOW_MEMORY: 'true' })).toBe(true);
    expect(launchWantsLowMemory(['start', '--worker-only'], {})).toBe(false);
    expect(launchWantsLowMemory(['migrate'], { DROVER_LOW_MEMORY: 'true' })).toBe(false);
  });

  it('is on with the option or DROVER_LOW_MEMORY=true only', () => {
    expect(wantsLowMemory(true, {})).toBe(true);
    expect(wantsLowMemory(undefined, { DROVER_LOW_MEMORY: 'true' })).toBe(true);
    expect(wantsLowMemory(undefined, { DROVER_LOW_MEMORY: '1' })).toBe(false);
    expect(wantsLowMemory(undefined, {})).toBe(false);
  });
});
