/**
 * `/v1/interrupts` against a real node on both engines: scope refusals, the
 * schema check (422 naming the field), the replay guard (409 on a second
 * resume, after the timeout, after a cancel; of concurrent resumes exactly
 * one wins), the audit record, the job's steps and wait, the SSE messages and
 * the pending-interrupt gauges.
 *
 * The interrupts are those a remote worker's attempt suspends on (the handler
 * is `remote: true`, so after a resume its job stays queued and nothing races
 * the assertions): leased and suspended through the store's own calls.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SuspendRequest, WaitRow } from '../../src/core/durable.js';
import type { interruptJson, stepJson, waitJson } from '../../src/api/serialize.js';
import type { Interrupt, JobStep, JobWait } from '../../src/sdk/types.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';
import { injectAs, keyWith, listen, openSse } from './support.js';

// The SDK's wire types must accept what the server sends (compile-time check).
type Assignable<T, U extends T> = U;
export type WireShapes = [
  Assignable<Interrupt, ReturnType<typeof interruptJson>>,
  Assignable<JobStep, ReturnType<typeof stepJson>>,
  Assignable<JobWait, ReturnType<typeof waitJson>>,
];

const APPROVAL = {
  type: 'object',
  properties: { approve: { type: 'boolean' }, note: { type: 'string', maxLength: 200 }, token: { type: 'string' } },
  required: ['approve'],
  additionalProperties: false,
} as const;

let node: TestNode;
const keys: Record<'resume' | 'read' | 'produce' | 'work', string> = { resume: '', read: '', produce: '', work: '' };
let resumeKeyId = '';
let priority = 0;

beforeAll(async () => {
  node = await startTestNode({
    handlers: [
      { name: 'approve', remote: true },
      { name: 'other', remote: true },
    ],
    rateLimit: { enabled: false },
    durable: { maxStepResultBytes: 4096 },
  });
  for (const scope of ['resume', 'read', 'produce', 'work'] as const) keys[scope] = await keyWith(node, [scope], `interrupts-${scope}`);
  const listed = await node.request('GET', '/v1/keys');
  resumeKeyId = (listed.body.keys as Array<{ id: string; name: string }>).find((k) => k.name === 'interrupts-resume')!.id;
});
afterAll(async () => node?.close());

/** A job of `handler` leased as a remote worker would, then suspended on `request` (an interrupt unless said otherwise). */
async function suspendedOn(request: Partial<SuspendRequest> = {}, handler = 'approve', before?: (job: { id: string; leaseToken: string }) => Promise<void>): Promise<WaitRow> {
  // Each new job outranks the resumed ones still queued (nobody runs this remote handler), so the lease takes it.
  const created = await node.request('POST', '/v1/jobs', { handler, payload: { order: 'o-1' }, priority: ++priority });
  expect(created.status).toBe(202);
  const [job] = await node.store.lease({ workerId: 'test-worker', handlers: [{ name: handler, max: 1 }], limit: 1, leaseMs: 60_000 });
  expect(job?.id).toBe(created.body.id);
  await before?.(job!);
  const now = Date.now();
  const result = await node.store.suspend(job!.id, job!.leaseToken, {
    step: 'manager-approval',
    seq: 0,
    kind: 'interrupt',
    startedAt: now,
    wakeAt: now + 3_600_000,
    prompt: 'Refund 120 for o-1?',
    schema: APPROVAL,
    ...request,
  });
  if (!result.ok || !result.suspended) throw new Error(`expected a suspension, got ${JSON.stringify(result)}`);
  return result.wait;
}

const resume = (id: string, input: unknown, key = keys.resume) => injectAs(node, key, 'POST', `/v1/interrupts/${id}/resume`, { input });

describe('scope', () => {
  it('a resume key lists, reads and resumes; read, produce and work keys get 403 on every interrupt route', async () => {
    const wait = await suspendedOn();
    for (const scope of ['read', 'produce', 'work'] as const) {
      for (const [method, url, body] of [
        ['GET', '/v1/interrupts', undefined],
        ['GET', `/v1/interrupts/${wait.id}`, undefined],
        ['POST', `/v1/interrupts/${wait.id}/resume`, { input: { approve: true } }],
      ] as const) {
        const res = await injectAs(node, keys[scope], method, url, body);
        expect(res.status, `${scope} ${method} ${url}`).toBe(403);
        expect(res.body.type).toBe('https://drover.dev/problems/forbidden');
      }
    }
    expect((await node.request('GET', `/v1/interrupts/${wait.id}`)).body.state).toBe('pending');

    const listed = await injectAs(node, keys.resume, 'GET', '/v1/interrupts?state=pending');
    expect(listed.status).toBe(200);
    expect(listed.body.interrupts.map((i: { id: string }) => i.id)).toContain(wait.id);
    const shown = await injectAs(node, keys.resume, 'GET', `/v1/interrupts/${wait.id}`);
    expect(shown.body).toMatchObject({ id: wait.id, jobId: wait.jobId, handler: 'approve', step: 'manager-approval', prompt: 'Refund 120 for o-1?', schema: APPROVAL, state: 'pending', resolvedAt: null, resolvedBy: null });
    expect(Date.parse(shown.body.expiresAt)).toBe(wait.wakeAt);

    const res = await resume(wait.id, { approve: true, note: 'ok' });
    expect(res.status).toBe(200);
    expect(res.body.interrupt).toMatchObject({ id: wait.id, state: 'resumed', resolvedBy: resumeKeyId });
    expect(res.body.job).toMatchObject({ id: wait.jobId, state: 'queued' });
  });

  it('a resume key can do nothing else: no intake, no job reads, no stream, no administration', async () => {
    for (const [method, url, body] of [
      ['POST', '/v1/events', { name: 'x.y' }],
      ['POST', '/v1/jobs', { handler: 'approve' }],
      ['GET', '/v1/jobs', undefined],
      ['GET', '/v1/status', undefined],
      ['POST', '/v1/workers/lease', { handlers: ['approve'], waitMs: 0 }],
      ['GET', '/v1/keys', undefined],
    ] as const) {
      expect((await injectAs(node, keys.resume, method, url, body)).status, `${method} ${url}`).toBe(403);
    }
  });

  it('keys are created with the resume scope over the API', async () => {
    const created = await node.request('POST', '/v1/keys', { name: 'approvals-bot', scopes: ['resume'], expiresInDays: 30 });
    expect(created.status).toBe(201);
    expect(created.body.scopes).toEqual(['resume']);
  });
});

describe('resume', () => {
  it('422 names the failing field and changes nothing', async () => {
    const wait = await suspendedOn();
    const wrongType = await resume(wait.id, { approve: 'yes' });
    expect(wrongType.status).toBe(422);
    expect(wrongType.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(wrongType.body.type).toBe('https://drover.dev/problems/validation');
    expect(wrongType.body.detail).toBe('input.approve: must be boolean');
    expect(wrongType.body.errors).toEqual([expect.objectContaining({ path: 'input.approve', message: 'must be boolean' })]);

    const missing = await resume(wait.id, { note: 'no decision' });
    expect(missing.status).toBe(422);
    expect(missing.body.detail).toMatch(/^input\.approve: must have required property 'approve'/);
    const extra = await resume(wait.id, { approve: true, amount: 1 });
    expect(extra.body.detail).toBe('input: must NOT have additional properties ("amount")');
    const large = await resume(wait.id, { approve: true, note: 'x'.repeat(150), token: 'y'.repeat(5000) });
    expect(large.status).toBe(422);
    expect(large.body.detail).toMatch(/^input: \d+ bytes of JSON, past the node's durable.maxStepResultBytes \(4096\)/);
    // No input at all is the request's own validation.
    expect((await injectAs(node, keys.resume, 'POST', `/v1/interrupts/${wait.id}/resume`, {})).status).toBe(422);

    expect((await node.store.getWait(wait.id))?.state).toBe('pending');
    expect((await node.request('GET', `/v1/jobs/${wait.jobId}`)).body.state).toBe('suspended');
  });

  it('a second resume is 409 interrupt-not-pending with its state; the step keeps the first input', async () => {
    const wait = await suspendedOn();
    expect((await resume(wait.id, { approve: true })).status).toBe(200);
    const again = await resume(wait.id, { approve: false });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ type: 'https://drover.dev/problems/interrupt-not-pending', state: 'resumed', interrupt: wait.id, jobId: wait.jobId });
    expect(again.body.detail).toContain(`by ${resumeKeyId}`);
    const steps = await node.store.getSteps(wait.jobId);
    expect(steps.find((s) => s.name === 'manager-approval')?.result).toEqual({ approve: true });
  });

  it('of concurrent resumes exactly one gets 200; the others 409', async () => {
    const wait = await suspendedOn();
    const answers = await Promise.all([true, false, true, false, true].map((approve) => resume(wait.id, { approve })));
    expect(answers.map((a) => a.status).sort()).toEqual([200, 409, 409, 409, 409]);
    // One answer stored, once.
    const steps = await node.store.getSteps(wait.jobId);
    expect(steps).toHaveLength(1);
    expect([{ approve: true }, { approve: false }]).toContainEqual(steps[0]!.result);
    expect(answers.filter((a) => a.status === 409).every((a) => a.body.state === 'resumed')).toBe(true);
  });

  it('after its timeout is 409 with state timed_out', async () => {
    // Far enough ahead that the suspension itself (a round trip on a loaded machine) happens before it.
    const wait = await suspendedOn({ wakeAt: Date.now() + 1_500 });
    await waitFor(async () => {
      await node.store.stageDue();
      return (await node.store.getWait(wait.id))?.state === 'timed_out';
    }, { message: 'the interrupt timed out' });
    const late = await resume(wait.id, { approve: true });
    expect(late.status).toBe(409);
    expect(late.body).toMatchObject({ type: 'https://drover.dev/problems/interrupt-not-pending', state: 'timed_out' });
    expect((await injectAs(node, keys.resume, 'GET', `/v1/interrupts/${wait.id}`)).body.state).toBe('timed_out');
  });

  it('after its job was cancelled is 409 with state cancelled', async () => {
    const wait = await suspendedOn();
    expect((await node.request('POST', `/v1/jobs/${wait.jobId}/cancel`)).body.state).toBe('cancelled');
    const late = await resume(wait.id, { approve: true });
    expect(late.status).toBe(409);
    expect(late.body.state).toBe('cancelled');
  });

  it('404 for an unknown id, and for a wait that is not an interrupt', async () => {
    const unknown = await resume('wt_000000000000ffffffffffffffffffffffffffffffff', { approve: true });
    expect(unknown.status).toBe(404);
    expect(unknown.body.type).toBe('https://drover.dev/problems/not-found');
    const sleep = await suspendedOn({ kind: 'sleep', step: 'cool-off', wakeAt: Date.now() + 3_600_000, prompt: undefined, schema: undefined });
    expect((await resume(sleep.id, { approve: true })).status).toBe(404);
    expect((await injectAs(node, keys.resume, 'GET', `/v1/interrupts/${sleep.id}`)).status).toBe(404);
  });

  it('is audited with the key id, the job, and the input by hash, credentials redacted', async () => {
    const wait = await suspendedOn();
    expect((await resume(wait.id, { approve: true, token: 'tok_secret_value' })).status).toBe(200);
    const audit = await node.request('GET', '/v1/audit?limit=50');
    const record = (audit.body.records as Array<Record<string, any>>).find((r) => r.action === 'interrupt.resume' && r.target === `interrupt:${wait.id}`);
    expect(record).toMatchObject({ actor: resumeKeyId, before: { state: 'pending' }, after: { state: 'resumed', jobId: wait.jobId, handler: 'approve', step: 'manager-approval', input: { approve: true, token: '[redacted]' } } });
    expect(record!.after.inputSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(audit.body)).not.toContain('tok_secret_value');
  });
});

describe('reads', () => {
  it('lists newest first with a cursor, filtered by state and handler', async () => {
    const first = await suspendedOn({}, 'other');
    const second = await suspendedOn({}, 'other');
    const third = await suspendedOn({}, 'other');
    const page1 = await injectAs(node, keys.resume, 'GET', '/v1/interrupts?handler=other&state=pending&limit=2');
    expect(page1.body.interrupts.map((i: { id: string }) => i.id)).toEqual([third.id, second.id]);
    const page2 = await injectAs(node, keys.resume, 'GET', `/v1/interrupts?handler=other&state=pending&limit=2&cursor=${page1.body.nextCursor}`);
    expect(page2.body.interrupts.map((i: { id: string }) => i.id)).toEqual([first.id]);
    expect(page2.body.nextCursor).toBeNull();
    expect((await resume(second.id, { approve: true })).status).toBe(200);
    const resumed = await injectAs(node, keys.resume, 'GET', '/v1/interrupts?handler=other&state=resumed');
    expect(resumed.body.interrupts.map((i: { id: string }) => i.id)).toEqual([second.id]);
    expect((await injectAs(node, keys.resume, 'GET', '/v1/interrupts?state=asleep')).status).toBe(422);
  });

  it('GET /v1/jobs/:id shows the steps (sizes; results on request) and the pending wait; ?state=suspended lists the job', async () => {
    const wait = await suspendedOn({ seq: 1 }, 'approve', async (job) => {
      const recorded = await node.store.recordStep(job.id, job.leaseToken, { name: 'load-order', seq: 0, kind: 'run', startedAt: Date.now(), result: { id: 'o-1', total: 120 }, limits: { maxStepResultBytes: 1 << 20, maxStepsPerJob: 100, maxStateBytesPerJob: 1 << 24 } });
      expect(recorded.ok).toBe(true);
    });
    const job = (await injectAs(node, keys.read, 'GET', `/v1/jobs/${wait.jobId}`)).body;
    expect(job.state).toBe('suspended');
    expect(job.steps).toEqual([expect.objectContaining({ name: 'load-order', seq: 0, kind: 'run', status: 'succeeded', attempt: 1, resultBytes: JSON.stringify({ id: 'o-1', total: 120 }).length })]);
    expect(job.steps[0]).not.toHaveProperty('result');
    expect(job.wait).toMatchObject({ id: wait.id, reason: 'interrupt', step: 'manager-approval', interruptId: wait.id, events: null });
    expect(Date.parse(job.wait.wakeAt)).toBe(wait.wakeAt);
    const withResults = (await injectAs(node, keys.read, 'GET', `/v1/jobs/${wait.jobId}?include=stepResults`)).body;
    expect(withResults.steps[0].result).toEqual({ id: 'o-1', total: 120 });
    const suspended = (await injectAs(node, keys.read, 'GET', '/v1/jobs?state=suspended&handler=approve&limit=500')).body;
    expect(suspended.jobs.map((j: { id: string }) => j.id)).toContain(wait.jobId);

    expect((await resume(wait.id, { approve: false })).status).toBe(200);
    const after = (await injectAs(node, keys.read, 'GET', `/v1/jobs/${wait.jobId}`)).body;
    expect(after.wait).toBeNull();
    expect(after.steps.map((s: { name: string }) => s.name)).toEqual(['load-order', 'manager-approval']);
  });
});

describe('observability', () => {
  it('the stream carries the resume: an interrupt message and the job queued with cause resume', async () => {
    const base = await listen(node);
    const wait = await suspendedOn();
    const stream = await openSse(base, `/v1/stream?job=${wait.jobId}`);
    try {
      expect(stream.status).toBe(200);
      expect((await resume(wait.id, { approve: true })).status).toBe(200);
      await waitFor(() => stream.messages().length >= 2, { message: 'two stream messages' });
      const messages = stream.messages();
      expect(messages).toContainEqual(expect.objectContaining({ event: 'interrupt', data: expect.objectContaining({ id: wait.id, jobId: wait.jobId, state: 'resumed', resolvedBy: resumeKeyId }) }));
      expect(messages).toContainEqual(expect.objectContaining({ event: 'job', data: expect.objectContaining({ id: wait.jobId, state: 'queued', cause: 'resume', reason: 'interrupt' }) }));
      // The prompt and the schema stay behind the resume scope.
      expect(JSON.stringify(messages)).not.toContain('Refund 120');
    } finally {
      stream.close();
      await stream.closed;
    }
  });

  it('/metrics shows the pending interrupts and the oldest one\'s age', async () => {
    const createdAt = Date.now() - 5_000;
    await suspendedOn({ startedAt: createdAt });
    const pending = await node.store.pendingInterrupts();
    expect(pending.count).toBeGreaterThan(0);
    const scrape = (await node.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(scrape).toContain(`drover_interrupts_pending ${pending.count}`);
    const age = Number(/^drover_interrupt_oldest_pending_age_seconds (\S+)$/m.exec(scrape)?.[1]);
    expect(age).toBeGreaterThan(0);
    expect(scrape).toMatch(/^drover_steps_total\{handler="approve",outcome="memoized"\} 0$/m);
    expect(scrape).toMatch(/^drover_jobs_suspended_total\{handler="approve",reason="interrupt"\} \d+$/m);
    expect(scrape).toMatch(/^drover_step_sequence_changes_total\{handler="approve"\} 0$/m);
  });
});
