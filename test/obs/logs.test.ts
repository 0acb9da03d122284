/**
 * Logs: every line written while serving a request carries its request id;
 * job lines carry job, handler, queue, attempt and the producer's trace id;
 * the level changes at runtime through the admin API, recorded as an
 * operator action.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';

let node: TestNode | null = null;
afterEach(async () => {
  await node?.close();
  node = null;
});

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const TRACEPARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;

async function adminKeyId(n: TestNode): Promise<string> {
  const keys = await n.store.listKeys();
  return keys.find((k) => k.name === 'bootstrap-admin')!.id;
}

describe('request logs', () => {
  it('tags every line written while serving a request with its request id', async () => {
    node = await startTestNode({ handlers: [{ name: 'h', run: async () => undefined }] });
    // Make the store fail for this read: the error handler logs the 500.
    node.store.getJob = async () => {
      throw new Error('disk on fire');
    };
    const from = node.logLines.length;
    const res = await node.request('GET', '/v1/jobs/some-id', undefined, { 'x-request-id': 'req-logs-1' });
    expect(res.status).toBe(500);
    expect(res.headers['x-request-id']).toBe('req-logs-1');
    expect(res.body.request_id).toBe('req-logs-1');
    const lines = node.logLines.slice(from);
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line.request_id, JSON.stringify(line)).toBe('req-logs-1');
    expect(lines.some((l) => l.msg === 'request failed' && (l.err as { message?: string }).message === 'disk on fire')).toBe(true);
  });

  it('generates a request id when the caller sends none, and logs with it', async () => {
    node = await startTestNode({ handlers: [{ name: 'h', run: async () => undefined }] });
    const res = await node.request('POST', '/v1/admin/log-level', { level: 'debug' });
    expect(res.status).toBe(200);
    const id = res.headers['x-request-id'] as string;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(node.logLines.filter((l) => l.request_id === id).length).toBeGreaterThan(0);
  });
});

describe('job logs', () => {
  it('carry job_id, handler, queue, attempt and the producer trace id', async () => {
    node = await startTestNode({
      handlers: [
        {
          name: 'traced',
          queue: 'q1',
          run: async (ctx) => {
            ctx.log.info({ step: 1 }, 'inside the handler');
          },
        },
      ],
    });
    const res = await node.request('POST', '/v1/jobs', { handler: 'traced' }, { traceparent: TRACEPARENT });
    expect(res.status).toBe(202);
    const jobId = res.body.id as string;
    const n = node;
    const done = await waitFor(() => n.logLines.find((l) => l.msg === 'job succeeded' && l.job_id === jobId));
    const inside = node.logLines.find((l) => l.msg === 'inside the handler')!;
    for (const line of [done, inside]) {
      expect(line).toMatchObject({ job_id: jobId, handler: 'traced', queue: 'q1', attempt: 1, trace_id: TRACE_ID });
      expect(line.span_id).toBeUndefined(); // tracing is off: no attempt span
    }
    expect(inside.step).toBe(1);
  });

  it('write one line per attempt outcome, none per poll', async () => {
    node = await startTestNode({ handlers: [{ name: 'quiet', run: async () => undefined }] });
    const n = node;
    const res = await node.request('POST', '/v1/jobs', { jobs: [{ handler: 'quiet' }, { handler: 'quiet' }, { handler: 'quiet' }] });
    const ids = (res.body.jobs as Array<{ id: string }>).map((j) => j.id);
    await waitFor(() => ids.every((id) => n.logLines.some((l) => l.job_id === id && l.msg === 'job succeeded')));
    for (const id of ids) expect(node.logLines.filter((l) => l.job_id === id)).toHaveLength(1);
  });
});

describe('POST /v1/admin/log-level', () => {
  it('changes the level at runtime and records the operator action with key and request id', async () => {
    node = await startTestNode({ handlers: [{ name: 'h', run: async () => undefined }] });
    const n = node;
    const keyId = await adminKeyId(n);

    const res = await n.request('POST', '/v1/admin/log-level', { level: 'warn' }, { 'x-request-id': 'req-level-1' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ level: 'warn', previous: 'debug' });
    expect(n.runtime.logger.level).toBe('warn');
    expect((await n.request('GET', '/v1/admin/log-level')).body).toEqual({ level: 'warn' });
    const action = n.logLines.find((l) => l.action === 'log_level.set' && l.request_id === 'req-level-1');
    expect(action).toMatchObject({ level: 'warn', key_id: keyId, from: 'debug', to: 'warn' });

    // Info lines (job outcomes) stop; the job still runs.
    const quiet = await n.request('POST', '/v1/jobs', { handler: 'h' });
    await waitFor(async () => (await n.store.getJob(quiet.body.id))?.state === 'succeeded');
    expect(n.logLines.some((l) => l.job_id === quiet.body.id)).toBe(false);

    // Going quieter than the record still records it (before the change, under the old level).
    await n.request('POST', '/v1/admin/log-level', { level: 'error' }, { 'x-request-id': 'req-level-2' });
    expect(n.logLines.find((l) => l.request_id === 'req-level-2' && l.action === 'log_level.set')).toMatchObject({ from: 'warn', to: 'error' });

    await n.request('POST', '/v1/admin/log-level', { level: 'info' });
    const loud = await n.request('POST', '/v1/jobs', { handler: 'h' });
    await waitFor(() => n.logLines.some((l) => l.job_id === loud.body.id && l.msg === 'job succeeded'));
  });

  it('needs the admin scope and a known level', async () => {
    node = await startTestNode({ handlers: [{ name: 'h', run: async () => undefined }] });
    const created = await node.request('POST', '/v1/keys', { name: 'reader', scopes: ['read'] });
    const reader = created.body.secret as string;
    const asReader = await node.app.inject({
      method: 'POST',
      url: '/v1/admin/log-level',
      headers: { authorization: `Bearer ${reader}`, 'content-type': 'application/json' },
      payload: JSON.stringify({ level: 'trace' }),
    });
    expect(asReader.statusCode).toBe(403);
    const anonymous = await node.app.inject({ method: 'GET', url: '/v1/admin/log-level' });
    expect(anonymous.statusCode).toBe(401);
    const bad = await node.request('POST', '/v1/admin/log-level', { level: 'loud' });
    expect(bad.status).toBe(422);
    expect(bad.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(node.runtime.logger.level).toBe('debug');
  });
});
