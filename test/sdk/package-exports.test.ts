/**
 * `drover/client` and `drover/worker` as a user imports them (by package
 * name, from dist/), in a process of their own, against `drover start`:
 * a remote worker runs a job that the client enqueues and waits for.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { api, killAllChildren, startChildNode } from '../helpers/child-node.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CONFIG = fileURLToPath(new URL('./fixtures/remote.config.mjs', import.meta.url));
const ADMIN = 'drv_package_exports_test_admin_012345';

const dir = mkdtempSync(join(tmpdir(), 'drover-sdk-'));
afterAll(async () => {
  await killAllChildren();
  rmSync(dir, { recursive: true, force: true });
});

const SCRIPT = `
import { createClient, isProblem } from 'drover/client';
import { runWorker } from 'drover/worker';
const { DROVER_TEST_URL: url, DROVER_TEST_PRODUCER: producer, DROVER_TEST_WORKER: workerKey } = process.env;
const worker = runWorker({ url, key: workerKey, concurrency: 2, handlers: { 'remote-echo': async (ctx) => ({ got: ctx.job.payload, attempt: ctx.job.attempt }) } });
const client = createClient({ url, key: producer });
const job = await client.enqueue({ handler: 'remote-echo', payload: { hello: 'world' } });
const done = await client.waitForJob(job.id, { timeoutMs: 20000 });
const refused = await client.enqueue({ handler: 'nope' }).catch((e) => e);
await worker.stop();
console.log(JSON.stringify({ state: done.state, result: done.result, refused: isProblem(refused, 'unknown-handler') }));
`;

describe('package exports drover/client and drover/worker', () => {
  it('work from another process, by package name', { timeout: 60_000 }, async () => {
    const node = await startChildNode({ config: CONFIG, env: { DROVER_DATABASE_URL: join(dir, 'sdk.db'), DROVER_BOOTSTRAP_ADMIN_KEY: ADMIN } });
    const producer = (await api(node.url, ADMIN, 'POST', '/v1/keys', { name: 'producer', scopes: ['produce'] })).body.secret as string;
    const workerKey = (await api(node.url, ADMIN, 'POST', '/v1/keys', { name: 'worker', scopes: ['work'] })).body.secret as string;

    const child = spawn(process.execPath, ['--input-type=module', '-e', SCRIPT], {
      cwd: ROOT,
      env: { ...process.env, DROVER_TEST_URL: node.url, DROVER_TEST_PRODUCER: producer, DROVER_TEST_WORKER: workerKey },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 40_000);
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    clearTimeout(timer);
    expect(code, stderr).toBe(0);
    expect(JSON.parse(stdout.trim())).toEqual({ state: 'succeeded', result: { got: { hello: 'world' }, attempt: 1 }, refused: true });
    node.child.kill('SIGTERM');
    expect((await node.exited).code).toBe(0);
  });
});
