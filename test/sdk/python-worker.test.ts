/**
 * The Python example in examples/ against a real `drover start`: it takes a
 * job, completes it, fails a bad one, runs a job with durable steps across
 * a sleep, and exits 0 on SIGTERM. Skipped when
 * python3 is not installed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { api, killAllChildren, startChildNode } from '../helpers/child-node.js';
import { waitFor } from '../helpers/wait-for.js';

const CONFIG = fileURLToPath(new URL('./fixtures/remote.config.mjs', import.meta.url));
const EXAMPLE = fileURLToPath(new URL('../../examples/python-worker.py', import.meta.url));
const ADMIN = 'drv_python_worker_test_admin_0123456789';
const hasPython = spawnSync('python3', ['--version']).status === 0;

const dir = mkdtempSync(join(tmpdir(), 'drover-py-'));
let python: ChildProcess | undefined;
afterAll(async () => {
  if (python && python.exitCode === null) python.kill('SIGKILL');
  await killAllChildren();
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!hasPython)('examples/python-worker.py', () => {
  it('runs remote jobs over the lease protocol and stops cleanly on SIGTERM', { timeout: 60_000 }, async () => {
    const node = await startChildNode({ config: CONFIG, env: { DROVER_DATABASE_URL: join(dir, 'py.db'), DROVER_BOOTSTRAP_ADMIN_KEY: ADMIN } });
    const key = (await api(node.url, ADMIN, 'POST', '/v1/keys', { name: 'python', scopes: ['work'] })).body.secret as string;

    const stderr: string[] = [];
    python = spawn('python3', [EXAMPLE], { env: { ...process.env, DROVER_URL: node.url, DROVER_KEY: key }, stdio: ['ignore', 'ignore', 'pipe'] });
    python.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
    const exited = new Promise<number | null>((resolve) => python!.on('exit', (code) => resolve(code)));

    const good = (await api(node.url, ADMIN, 'POST', '/v1/jobs', { handler: 'py-echo', payload: { n: 7 } })).body.id as string;
    const bad = (await api(node.url, ADMIN, 'POST', '/v1/jobs', { handler: 'py-echo', payload: 'not an object' })).body.id as string;
    const job = (id: string) => api(node.url, ADMIN, 'GET', `/v1/jobs/${id}`).then((r) => r.body);

    await waitFor(async () => (await job(good)).state === 'succeeded', { timeoutMs: 20_000, message: `python completed the job (stderr: ${stderr.join('')})` });
    expect((await job(good)).result).toEqual({ echo: { n: 7 }, by: 'python' });
    expect((await job(good)).workerId).toMatch(/^remote:key_/);
    await waitFor(async () => (await job(bad)).state === 'dead', { timeoutMs: 20_000, message: 'python failed the bad job' });
    expect((await job(bad)).lastError).toContain('ValueError: expected an object payload');

    // Durable steps: the sleep suspends the job, it comes back to the worker, and the first step is not run again.
    const stepped = (await api(node.url, ADMIN, 'POST', '/v1/jobs', { handler: 'py-steps', payload: { a: 2, b: 3, pauseMs: 200 } })).body.id as string;
    await waitFor(async () => (await job(stepped)).state === 'succeeded', { timeoutMs: 20_000, message: `python ran the stepped job (stderr: ${stderr.join('')})` });
    const done = await job(stepped);
    expect(done.result).toEqual({ doubled: 10, by: 'python' });
    expect(done.attempts.map((a: { outcome: string }) => a.outcome)).toEqual(['suspended', 'succeeded']);

    python.kill('SIGTERM');
    expect(await exited).toBe(0);
    node.child.kill('SIGTERM');
    expect((await node.exited).code).toBe(0);
  });
});
