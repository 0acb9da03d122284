/**
 * SQLite out of disk space, on a real small filesystem: a tmpfs mounted by the
 * test (it runs as root in CI; without the privilege to mount, the test is
 * skipped with that reason, since no other way fills the disk under a running
 * node's WAL). The store file lives on it; a filler file takes the rest.
 *
 * What must hold: intake answers 507 problem+json `store-full` with
 * Retry-After (never 500); readiness is 503 naming the reason; the metric
 * says so; a job outcome that could not be written is retried and lands
 * once; and when space is freed the node recovers by itself with nothing
 * accepted lost.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SqliteEngine } from '../../src/store/sqlite/sqlite-engine.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';

const SIZE = '3m';

function tryMount(dir: string): string | null {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${SIZE}`, 'tmpfs', dir], { stdio: 'pipe' });
    return null;
  } catch (error) {
    return `cannot mount a tmpfs (${(error as Error).message.split('\n')[0]}); run as root to test disk full`;
  }
}

const probeDir = mkdtempSync(join(tmpdir(), 'drover-full-probe-'));
const cannotMount = tryMount(probeDir);
if (!cannotMount) execFileSync('umount', [probeDir]);
rmSync(probeDir, { recursive: true, force: true });

/** Fill the filesystem under `dir` with one file until the kernel refuses (ENOSPC). */
function fill(file: string): number {
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  let written = 0;
  try {
    for (;;) {
      try {
        written += writeSync(fd, chunk);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOSPC') break;
        throw error;
      }
    }
    // Smaller pieces, so not even one more page fits.
    const small = Buffer.alloc(512, 1);
    for (;;) {
      try {
        written += writeSync(fd, small);
      } catch {
        break;
      }
    }
  } finally {
    closeSync(fd);
  }
  return written;
}

describe.skipIf(cannotMount !== null)(`sqlite disk full (tmpfs of ${SIZE})${cannotMount ? `: skipped, ${cannotMount}` : ''}`, () => {
  let dir: string;
  let node: TestNode | null = null;
  let gate: { open(): void; wait: Promise<void> };
  let runs = 0;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'drover-full-'));
    const error = tryMount(dir);
    if (error) throw new Error(error);
    let open!: () => void;
    gate = { wait: new Promise<void>((resolve) => (open = resolve)), open: () => open() };
    runs = 0;
  });

  afterEach(async () => {
    gate.open();
    rmSync(join(dir, 'filler'), { force: true });
    await node?.close();
    node = null;
    execFileSync('umount', [dir]);
    rmSync(dir, { recursive: true, force: true });
  });

  const start = () =>
    startTestNode(
      {
        handlers: [
          { name: 'quick', concurrency: 4, run: () => undefined },
          {
            name: 'gated',
            async run() {
              runs++;
              await gate.wait;
              return { done: true };
            },
          },
        ],
      },
      { dir },
    );

  const store = () => node!.store as unknown as SqliteEngine;
  const big = (n: number) => ({ handler: 'quick', payload: { n, pad: 'x'.repeat(200_000) } });

  it('intake answers 507 store-full with Retry-After, readiness 503 names it, the metric shows it; freed space recovers by itself, nothing lost', { timeout: 30_000 }, async () => {
    node = await start();
    const accepted: string[] = [];
    const ok = await node.request('POST', '/v1/jobs', big(0));
    expect(ok.status).toBe(202);
    accepted.push(ok.body.id);

    fill(join(dir, 'filler'));
    // Keep offering work until the store refuses it (the WAL may have room left for a little).
    let refused: Awaited<ReturnType<TestNode['request']>> | null = null;
    for (let n = 1; n <= 30 && !refused; n++) {
      const res = await node.request('POST', '/v1/jobs', big(n));
      if (res.status === 202) accepted.push(res.body.id);
      else refused = res;
    }
    expect(refused, 'the disk filled up').not.toBeNull();
    expect(refused!.status).toBe(507);
    expect(refused!.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(refused!.headers['retry-after']).toBe('5');
    expect(refused!.body).toMatchObject({ type: 'https://drover.dev/problems/store-full', status: 507, title: 'The store is out of disk space' });
    expect(refused!.body.detail).toMatch(/out of disk space/);

    const ready = await node.request('GET', '/health/ready');
    expect(ready.status).toBe(503);
    expect(ready.body.checks.store).toMatchObject({ ok: false });
    expect(ready.body.checks.store.detail).toMatch(/out of disk space \(SQLITE_FULL\)/);
    const metrics = await node.request('GET', '/metrics');
    expect(metrics.body).toMatch(/^drover_store_full\{engine="sqlite"\} 1$/m);
    expect(metrics.body).toMatch(/^drover_store_full_errors_total\{engine="sqlite"\} [1-9]/m);

    // Space comes back: the node notices by itself (no restart, no operator call).
    rmSync(join(dir, 'filler'));
    await waitFor(async () => (await node!.request('GET', '/health/ready')).status === 200, { timeoutMs: 10_000, message: 'ready again' });
    expect(store().space.full).toBe(false);
    expect((await node.request('GET', '/metrics')).body).toMatch(/^drover_store_full\{engine="sqlite"\} 0$/m);
    const after = await node.request('POST', '/v1/jobs', big(99));
    expect(after.status).toBe(202);
    accepted.push(after.body.id);

    // Nothing accepted was lost: every job acknowledged before, during and after ran.
    await waitFor(async () => {
      for (const id of accepted) if ((await node!.store.getJob(id))?.state !== 'succeeded') return false;
      return true;
    }, { timeoutMs: 10_000, message: 'every accepted job succeeded' });
  });

  it('an outcome that cannot be written while the disk is full is retried and lands once space is freed', { timeout: 30_000 }, async () => {
    node = await start();
    const res = await node.request('POST', '/v1/jobs', { handler: 'gated', payload: {} });
    expect(res.status).toBe(202);
    const id: string = res.body.id;
    await waitFor(() => runs === 1, { message: 'the gated job started' });

    fill(join(dir, 'filler'));
    // Use up what is left in the WAL, so the completion cannot be written either.
    for (let n = 0; n < 30 && !store().space.full; n++) await node.request('POST', '/v1/jobs', big(n));
    expect(store().space.full, 'the disk filled up').toBe(true);

    gate.open();
    // The fault really happened to the outcome: its write failed and is being retried.
    await waitFor(() => store().space.retrying === 1, { timeoutMs: 10_000, message: 'the outcome write is being retried' });
    expect((await node.store.getJob(id))?.state).toBe('running');

    rmSync(join(dir, 'filler'));
    await waitFor(async () => (await node!.store.getJob(id))?.state === 'succeeded', { timeoutMs: 10_000, message: 'the outcome landed' });
    expect((await node.store.getAttempts(id)).map((a) => a.outcome)).toEqual(['succeeded']);
    expect((await node.store.getJob(id))?.result).toEqual({ done: true });
    expect(runs).toBe(1);
  });
});
