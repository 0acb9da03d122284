/**
 * Shared by the durable-execution tests: read a job from the store, wait for
 * a state, and collect lifecycle events of a node.
 */
import type { JobRow } from '../../src/core/types.js';
import type { LifecycleEvents, LifecycleName } from '../../src/core/lifecycle-events.js';
import type { TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';

export async function jobIn(node: TestNode, id: string, state: JobRow['state'], timeoutMs = 15_000): Promise<JobRow> {
  return waitFor(async () => {
    const job = await node.store.getJob(id);
    return job?.state === state ? job : null;
  }, { timeoutMs, message: `job ${id} ${state}` });
}

export async function enqueue(node: TestNode, handler: string, payload: unknown = null, extra: Record<string, unknown> = {}): Promise<string> {
  const { status, body } = await node.request('POST', '/v1/jobs', { handler, payload, ...extra });
  if (status !== 202) throw new Error(`enqueue answered ${status}: ${JSON.stringify(body)}`);
  return body.id as string;
}

/** Every payload of these lifecycle events, in order, from now on. */
export function record<K extends LifecycleName>(node: TestNode, name: K): Array<LifecycleEvents[K]> {
  const seen: Array<LifecycleEvents[K]> = [];
  node.runtime.lifecycle.on(name, (payload) => seen.push(payload));
  return seen;
}
