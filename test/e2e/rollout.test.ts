/**
 * Issue 21 §1: the release channel and feature gates, shown everywhere an
 * operator looks and changed live: through the API and `drover gates` (run as
 * users run it), reaching a second node on the same store within seconds.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig } from '../../src/core/config.js';
import { keyWith, listen } from '../api/support.js';
import { ADMIN_KEY, startTestNode, testEngine, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';
import { drover } from '../ops/cli.js';

const nodes: TestNode[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.close()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const rollout = { channel: 'canary', featureGates: { 'new-pricing': false, 'fast-path': true } };

async function node(dir?: string): Promise<TestNode> {
  const n = await startTestNode({ handlers: [{ name: 'h', remote: true }], rollout }, dir ? { dir } : {});
  nodes.push(n);
  return n;
}

const metricLine = async (n: TestNode, pattern: RegExp) => {
  const text = (await n.app.inject({ method: 'GET', url: '/metrics' })).body;
  return text.split('\n').find((l) => pattern.test(l)) ?? null;
};

describe(`release channel and feature gates (${testEngine()})`, () => {
  it('shows the channel and gates in status, the startup log and metrics; an admin overrides a gate, audited; `default` removes the override', async () => {
    const n = await node();
    expect(n.logLines.find((l) => l.msg === 'node started on channel canary')).toMatchObject({ channel: 'canary', feature_gates: { 'new-pricing': false, 'fast-path': true, 'durable-steps': true, 'remote-workers': true } });
    const status = await n.request('GET', '/v1/status');
    expect(status.body.rollout).toEqual({ channel: 'canary', gates: { 'durable-steps': true, 'fast-path': true, 'new-pricing': false, 'remote-workers': true } });
    const view = await n.request('GET', '/v1/status/rollout');
    expect(view.body).toMatchObject({ channel: 'canary', channels: ['development', 'staging', 'canary', 'production'] });
    expect(view.body.gates.find((g: { name: string }) => g.name === 'new-pricing')).toEqual({ name: 'new-pricing', enabled: false, source: 'config', configured: false, builtin: false });
    expect(await metricLine(n, /^drover_build_info\{/)).toMatch(/channel="canary"/);
    expect(await metricLine(n, /^drover_feature_gate\{gate="new-pricing"\}/)).toBe('drover_feature_gate{gate="new-pricing"} 0');

    const url = await listen(n);
    const env = { DROVER_URL: url, DROVER_API_KEY: ADMIN_KEY };
    const set = await drover(['gates', 'set', 'new-pricing', 'on'], env);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toMatch(/^new-pricing\s+on\s+override \(config: off\)/);
    expect(await metricLine(n, /^drover_feature_gate\{gate="new-pricing"\}/)).toBe('drover_feature_gate{gate="new-pricing"} 1');
    const listed = await drover(['gates', 'list'], env);
    expect(listed.stdout).toMatch(/^channel canary/);
    expect(listed.stdout).toMatch(/new-pricing\s+on\s+override/);
    const [record] = (await n.request('GET', '/v1/audit?limit=1')).body.records;
    expect(record).toMatchObject({ action: 'gate.set', target: 'gate:new-pricing', before: { enabled: false, source: 'config' }, after: { enabled: true, source: 'override' } });

    const back = await drover(['gates', 'set', 'new-pricing', 'default'], env);
    expect(back.stdout).toMatch(/^new-pricing\s+off\s+config/);
    const typo = await n.request('POST', '/v1/gates/new-pricnig', { enabled: true });
    expect(typo.status).toBe(404);
    expect(typo.body.detail).toMatch(/no feature gate "new-pricnig"; gates are declared in the config/);
    expect((await n.request('POST', '/v1/gates/new-pricing', { enabled: 'yes' })).status).toBe(422);
    const reader = await keyWith(n, ['read']);
    expect((await n.request('POST', '/v1/gates/new-pricing', { enabled: true }, { authorization: `Bearer ${reader}` })).status).toBe(403);
    expect((await n.request('GET', '/v1/gates', undefined, { authorization: `Bearer ${reader}` })).status).toBe(200);
  });

  it('the remote-workers gate stops new leases with 503 feature-disabled; turning it on again serves them', async () => {
    const n = await node();
    const worker = await keyWith(n, ['work']);
    const lease = () => n.request('POST', '/v1/workers/lease', { workerId: 'w1', handlers: ['h'], max: 1, waitMs: 0 }, { authorization: `Bearer ${worker}` });
    expect((await lease()).status).toBe(200);
    expect((await n.request('POST', '/v1/gates/remote-workers', { enabled: false })).status).toBe(200);
    const refused = await lease();
    expect(refused.status).toBe(503);
    expect(refused.body.type).toMatch(/feature-disabled$/);
    expect(refused.headers['retry-after']).toBe('30');
    expect((await n.request('POST', '/v1/gates/remote-workers', { enabled: null })).status).toBe(200);
    expect((await lease()).status).toBe(200);
  });

  it.runIf(testEngine() === 'postgres')('an override made on one node reaches another node on the same store within seconds', { timeout: 30_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-gates-'));
    dirs.push(dir);
    // Two nodes in one process: each needs its own node id (read from the environment at start).
    process.env.DROVER_NODE_ID = 'gates-a';
    const a = await node(dir);
    process.env.DROVER_NODE_ID = 'gates-b';
    const b = await node(dir).finally(() => delete process.env.DROVER_NODE_ID);
    expect((await a.request('POST', '/v1/gates/fast-path', { enabled: false })).status).toBe(200);
    const started = Date.now();
    await waitFor(async () => (await b.request('GET', '/v1/gates')).body.gates.find((g: { name: string }) => g.name === 'fast-path').enabled === false, { timeoutMs: 10_000, message: 'node b to see the override' });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(b.logLines.some((l) => l.msg === 'feature gate fast-path is now off')).toBe(true);
  });

  it('refuses a channel that is not one of the stages, and unknown rollout keys, naming them', () => {
    expect(() => resolveConfig({ handlers: [], rollout: { channel: 'prod' } }, {})).toThrow(/rollout\.channel: "prod" is not one of the channels \(development, staging, canary, production\)/);
    expect(() => resolveConfig({ handlers: [], rollout: { channel: 'blue', channels: ['blue', 'green'] } }, {})).not.toThrow();
    expect(resolveConfig({ handlers: [], rollout: { channels: ['dev', 'live'] } }, {}).rollout.channel).toBe('live');
    expect(() => resolveConfig({ handlers: [], rollout: { chanel: 'canary' } } as never, {})).toThrow(/rollout.*chanel/);
    expect(() => resolveConfig({ handlers: [], rollout: { featureGates: { 'Bad Name': true } } }, {})).toThrow(/rollout\.featureGates/);
  });
});
