/**
 * Operator actions through the API land in the audit trail with the key that
 * made them, the request id, the target and before/after; `GET /v1/audit`
 * pages them; the node exports them at shutdown and the export verifies.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportFiles } from '../../src/ops/audit/export.js';
import { trustedKeys } from '../../src/ops/audit/node-key.js';
import { verifyExportFiles, verifyStoredTrail } from '../../src/ops/audit/verify.js';
import { startTestNode, type TestNode } from '../helpers/node.js';

let node: TestNode;
let adminKeyId: string;

beforeAll(async () => {
  node = await startTestNode({
    handlers: [{ name: 'later', run: async () => undefined }],
    queues: { bulk: {} },
    rateLimit: { enabled: false },
  });
  adminKeyId = (await node.store.listKeys())[0]!.id;
});
afterAll(async () => node?.close());

const audit = async (query = '') => (await node.request('GET', `/v1/audit${query}`)).body;

describe('operator actions are recorded', () => {
  it('job cancel and retry: actor, request id, target, before and after', async () => {
    const created = await node.request('POST', '/v1/jobs', { handler: 'later', delayMs: 3_600_000 });
    const id = created.body.id as string;
    const cancel = await node.request('POST', `/v1/jobs/${id}/cancel`, undefined, { 'x-request-id': 'req-cancel-1' });
    expect(cancel.status).toBe(200);
    const retry = await node.request('POST', `/v1/jobs/${id}/retry`, undefined, { 'x-request-id': 'req-retry-1' });
    expect(retry.status).toBe(200);

    const { records } = await audit('?limit=2');
    expect(records[1]).toMatchObject({ actor: adminKeyId, requestId: 'req-cancel-1', action: 'job.cancel', target: `job:${id}`, before: { state: 'scheduled' }, after: { state: 'cancelled' } });
    expect(records[0]).toMatchObject({ actor: adminKeyId, requestId: 'req-retry-1', action: 'job.retry', target: `job:${id}`, before: { state: 'cancelled' }, after: { state: 'queued' } });
    expect(Date.parse(records[0].time)).toBeGreaterThan(Date.now() - 60_000);
    expect(records[0].prevHash).toBe(records[1].hash);
  });

  it('a refused action records nothing', async () => {
    const before = (await audit('?limit=1')).records[0].seq;
    expect((await node.request('POST', '/v1/jobs/999999/cancel')).status).toBe(404);
    expect((await audit('?limit=1')).records[0].seq).toBe(before);
  });

  it('handler and queue pause/resume/reset, key create/revoke, log level', async () => {
    await node.request('POST', '/v1/handlers/later/pause');
    await node.request('POST', '/v1/handlers/later/resume');
    await node.request('POST', '/v1/handlers/later/reset');
    await node.request('POST', '/v1/queues/bulk/pause');
    await node.request('POST', '/v1/queues/bulk/resume');
    const key = await node.request('POST', '/v1/keys', { name: 'ci', scopes: ['produce'] });
    await node.request('POST', `/v1/keys/${key.body.id}/revoke`);
    await node.request('POST', '/v1/admin/log-level', { level: 'warn' });

    const { records } = await audit('?limit=8');
    const actions = records.reverse().map((r: any) => [r.action, r.target, r.before, r.after]);
    // Handler records carry the handler's whole operator-visible state (pause, quarantine, breaker).
    const paused = (value: boolean) => expect.objectContaining({ paused: value });
    expect(actions).toEqual([
      ['handler.pause', 'handler:later', paused(false), paused(true)],
      ['handler.resume', 'handler:later', paused(true), paused(false)],
      ['handler.reset', 'handler:later', paused(false), paused(false)],
      ['queue.pause', 'queue:bulk', { paused: false }, { paused: true }],
      ['queue.resume', 'queue:bulk', { paused: true }, { paused: false }],
      ['key.create', `key:${key.body.id}`, null, { name: 'ci', scopes: ['produce'], expiresAt: null }],
      ['key.revoke', `key:${key.body.id}`, { revoked: false }, { revoked: true }],
      ['log.level', 'node:log-level', { level: 'debug' }, { level: 'warn' }],
    ]);
    // The secret never reaches the trail.
    expect(JSON.stringify(records)).not.toContain(key.body.secret);
  });
});

describe('GET /v1/audit', () => {
  it('defaults to 200, pages with a cursor, and refuses limits outside 1–1000', async () => {
    const all = await audit();
    expect(all.records.length).toBeGreaterThan(5);
    expect(all.records.length).toBeLessThanOrEqual(200);
    expect(all.nextCursor).toBeNull();
    const seqs = all.records.map((r: any) => r.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => b - a));

    const first = await audit('?limit=3');
    expect(first.records).toHaveLength(3);
    expect(first.nextCursor).toBe(String(first.records[2].seq));
    const second = await audit(`?limit=3&cursor=${first.nextCursor}`);
    expect(second.records.map((r: any) => r.seq)).toEqual(seqs.slice(3, 6));

    for (const bad of ['?limit=0', '?limit=1001', '?limit=abc', '?cursor=-1', '?other=1']) {
      const res = await node.request('GET', `/v1/audit${bad}`);
      expect(res.status, bad).toBe(422);
      expect(res.headers['content-type']).toMatch(/problem\+json/);
    }
    expect((await node.request('GET', '/v1/audit?limit=1000')).status).toBe(200);
  });

  it('what it returns verifies against the node key', async () => {
    const keys = trustedKeys(node.dir);
    expect(keys.size).toBe(1);
    const report = await verifyStoredTrail(node.store, keys);
    expect(report).toMatchObject({ ok: true, firstSeq: 1 });
  });
});

describe('export', () => {
  it('writes the trail to audit/audit-<day>.jsonl at shutdown, and the file verifies', async () => {
    const last = (await audit('?limit=1')).records[0];
    await node.shutdown(1_000);
    const files = exportFiles(join(node.dir, 'audit'));
    expect(files).toHaveLength(1);
    const lines = readFileSync(files[0]!, 'utf8').trimEnd().split('\n');
    expect(JSON.parse(lines.at(-1)!)).toEqual(last);
    expect(verifyExportFiles(files, trustedKeys(node.dir))).toMatchObject({ ok: true, firstSeq: 1, lastSeq: last.seq });
  });
});
