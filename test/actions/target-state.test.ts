/**
 * Per-target state is shared through the store: a hold ("retry after") or an
 * opened breaker recorded by one node holds deliveries on another that
 * reads the store. Runs on both engines (vitest projects).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TargetStates } from '../../src/runtime/actions/target-state.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { actionConfig } from './support.js';

let node: TestNode | undefined;
afterEach(async () => {
  await node?.close();
  node = undefined;
});

const policy = { failures: 2, ratio: 2, minRequests: 1000, window: 20, coolDownMs: 60_000 };

describe('target state across nodes', () => {
  it('a hold and an open breaker written by one node hold the target on another', async () => {
    node = await startTestNode(actionConfig());
    let now = 1_000_000;
    const errors: Error[] = [];
    const make = () => new TargetStates({ store: node!.store, policy, clock: () => now, probeStaleMs: 30_000, onError: (_t, e) => errors.push(e) });
    const [a, b] = [make(), make()];
    expect(b.admit('api.telegram.org:443')).toBeNull();

    a.hold('api.telegram.org:443', now + 5_000);
    a.hold('api.telegram.org:443', now + 1_000); // an earlier hold never shortens a later one
    a.result('hooks.example.com:443', false);
    a.result('hooks.example.com:443', false);
    await a.stop();
    await b.load(['api.telegram.org:443', 'hooks.example.com:443']);

    expect(b.admit('api.telegram.org:443')).toBe(now + 5_000);
    expect(b.admit('hooks.example.com:443')).toBe(now + 60_000);
    expect(b.view()['api.telegram.org:443']).toMatchObject({ state: 'closed', holdUntil: new Date(now + 5_000).toISOString() });
    expect(b.view()['hooks.example.com:443']).toMatchObject({ state: 'open', consecutiveFailures: 2 });

    now += 5_001;
    expect(b.admit('api.telegram.org:443')).toBeNull();
    expect(b.view()['api.telegram.org:443']!.holdUntil).toBeUndefined();
    await b.stop();
    expect(errors).toEqual([]);
  });
});
