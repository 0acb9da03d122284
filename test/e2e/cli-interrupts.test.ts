/**
 * `drover interrupts list|show|resume` as users run it (bin/drover, a child
 * process; needs `npm run build`) against a running node over HTTP, with a
 * key of the `resume` scope that `drover keys create` made on the box.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { listen } from '../api/support.js';
import { drover } from '../ops/cli.js';

let node: TestNode;
let env: Record<string, string>;
const dir = mkdtempSync(join(tmpdir(), 'drover-cli-interrupts-'));

beforeAll(async () => {
  node = await startTestNode({ handlers: [{ name: 'approve', remote: true }] }, { engine: 'sqlite' });
  const created = await drover(['keys', 'create', '--name', 'approvals-cli', '--scopes', 'resume', '--json'], { DROVER_DATABASE_URL: join(node.dir, 'drover.db') });
  expect(created.stderr).toBe('');
  const key = JSON.parse(created.stdout) as { scopes: string[]; secret: string };
  expect(key.scopes).toEqual(['resume']);
  env = { DROVER_URL: await listen(node), DROVER_API_KEY: key.secret };
});
afterAll(async () => {
  await node?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function pendingInterrupt(): Promise<{ id: string; jobId: string }> {
  const created = await node.request('POST', '/v1/jobs', { handler: 'approve' });
  const [job] = await node.store.lease({ workerId: 'cli-test', handlers: [{ name: 'approve', max: 1 }], limit: 1, leaseMs: 60_000 });
  expect(job?.id).toBe(created.body.id);
  const now = Date.now();
  const result = await node.store.suspend(job!.id, job!.leaseToken, {
    step: 'manager-approval',
    seq: 0,
    kind: 'interrupt',
    startedAt: now,
    wakeAt: null,
    prompt: 'Refund 120 for o-1?',
    schema: { type: 'object', properties: { approve: { type: 'boolean' } }, required: ['approve'] },
  });
  if (!result.ok || !result.suspended) throw new Error(`expected a suspension, got ${JSON.stringify(result)}`);
  return { id: result.wait.id, jobId: job!.id };
}

describe('drover interrupts', () => {
  it('lists, shows and resumes an interrupt; a bad input names the field; a second resume is refused', async () => {
    const { id, jobId } = await pendingInterrupt();

    const list = await drover(['interrupts', 'list'], env);
    expect(list.stderr).toBe('');
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout).interrupts.map((i: { id: string }) => i.id)).toEqual([id]);

    const show = await drover(['interrupts', 'show', id], env);
    expect(JSON.parse(show.stdout)).toMatchObject({ id, jobId, prompt: 'Refund 120 for o-1?', state: 'pending', expiresAt: null });

    const bad = await drover(['interrupts', 'resume', id, '--input', '{"approve":"yes"}'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('422');
    expect(bad.stderr).toContain('input.approve: must be boolean');

    const notJson = await drover(['interrupts', 'resume', id, '--input', '{approve'], env);
    expect(notJson.code).toBe(1);
    expect(notJson.stderr).toMatch(/the input in --input is not JSON/);
    const neither = await drover(['interrupts', 'resume', id], env);
    expect(neither.stderr).toMatch(/pass the input as JSON with --input or --input-file/);

    const file = join(dir, 'decision.json');
    writeFileSync(file, JSON.stringify({ approve: true }));
    const ok = await drover(['interrupts', 'resume', id, '--input-file', file], env);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ interrupt: { id, state: 'resumed' }, job: { id: jobId, state: 'queued' } });

    const again = await drover(['interrupts', 'resume', id, '--input', '{"approve":false}'], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/409 The interrupt is no longer pending: interrupt \S+ was already resumed by key_/);
    expect((await node.store.getSteps(jobId))[0]?.result).toEqual({ approve: true });

    const resumed = await drover(['interrupts', 'list', '--state', 'resumed'], env);
    expect(JSON.parse(resumed.stdout).interrupts[0]).toMatchObject({ id, state: 'resumed' });
  });
});
