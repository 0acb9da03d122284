/** Shared steps of the action tests: a node, a trigger, an event, its delivery job. */
import { expect } from 'vitest';
import type { DroverConfig } from '../../src/core/handler.js';
import type { TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';

export const actionConfig = (extra: Partial<DroverConfig> = {}): Omit<DroverConfig, 'databaseUrl'> => ({
  handlers: [{ name: 'noop', on: 'never.sent', run: () => null }],
  rateLimit: { enabled: false },
  ...extra,
  webhooks: { allowPrivateNetworks: true, maxAttempts: 3, ...extra.webhooks },
});

export interface JobView {
  id: string;
  handler: string;
  state: string;
  deadReason: string | null;
  lastError: string | null;
  result: unknown;
  attempts: Array<{ outcome: string; error: string | null }>;
}

export async function createTrigger(node: TestNode, action: Record<string, unknown>, on = 'order.*'): Promise<{ id: string; body: any }> {
  const res = await node.request('POST', '/v1/triggers', { on, action });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return { id: res.body.id as string, body: res.body };
}

/** Send an event; the id of the job it fanned out to for `handler`. */
export async function send(node: TestNode, handler: string, data: unknown, name = 'order.created'): Promise<string> {
  const res = await node.request('POST', '/v1/events', { name, data });
  expect(res.status).toBe(202);
  const event = await node.request('GET', `/v1/events/${res.body.id as string}`);
  const job = (event.body.jobs as Array<{ id: string; handler: string }>).find((j) => j.handler === handler);
  expect(job, `a ${handler} job`).toBeDefined();
  return job!.id;
}

export async function job(node: TestNode, id: string): Promise<JobView> {
  return (await node.request('GET', `/v1/jobs/${id}`)).body as JobView;
}

/** Wait until the job is succeeded or dead; the job. */
export async function settled(node: TestNode, id: string, timeoutMs = 15_000): Promise<JobView> {
  return waitFor(async () => {
    const j = await job(node, id);
    return j.state === 'succeeded' || j.state === 'dead' ? j : null;
  }, { timeoutMs, message: `job ${id} settled` });
}
