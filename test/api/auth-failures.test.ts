/**
 * Finding 8 (issue 15): failed authentication was not limited, and a flood of
 * random keys cleared the key cache wholesale at 10,000 entries, so every
 * valid key went back to the store. Unknown keys now have their own LRU and
 * each client address gets `auth.maxFailures` failures per window before 429.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { keyWith } from './support.js';

let node: TestNode | undefined;
afterEach(async () => {
  await node?.close();
  node = undefined;
});

async function as(n: TestNode, key: string, address: string) {
  const response = await n.app.inject({ method: 'GET', url: '/v1/queues', headers: { authorization: `Bearer ${key}` }, remoteAddress: address });
  return { status: response.statusCode, headers: response.headers, body: response.json() as Record<string, unknown> };
}

/** Store lookups of keys so far: the instrumented store's operation histogram. */
async function keyLookups(n: TestNode): Promise<number> {
  const text = await n.metrics.scrape();
  const line = text.split('\n').find((l) => l.startsWith('drover_store_operation_duration_seconds_count{') && l.includes('op="findKeyByHash"'));
  return line ? Number(line.split(' ').pop()) : 0;
}

const randomKey = () => `drv_${randomBytes(24).toString('base64url')}`;

describe('failed authentication', () => {
  it('a flood of random keys from many addresses does not evict a valid key from the cache', async () => {
    let now = Date.now();
    node = await startTestNode({ handlers: [], auth: { maxFailures: 1000 }, rateLimit: { enabled: false } }, { clock: () => now });
    const valid = await keyWith(node, ['read']);
    expect((await as(node, valid, '10.9.9.9')).status).toBe(200);
    const before = await keyLookups(node);
    expect((await as(node, valid, '10.9.9.9')).status).toBe(200);
    expect(await keyLookups(node)).toBe(before); // cached

    // More random keys than the old cache held before it was cleared wholesale (10,000).
    const flood = 10_100;
    for (let i = 0; i < flood; i++) {
      const answer = await as(node, randomKey(), `10.0.${Math.floor(i / 200)}.${i % 200}`);
      if (answer.status !== 401) throw new Error(`random key ${i} got ${answer.status}`);
    }
    expect(await keyLookups(node)).toBe(before + flood);
    now += 1000; // still inside the 5 s cache lifetime
    expect((await as(node, valid, '10.9.9.9')).status).toBe(200);
    expect(await keyLookups(node)).toBe(before + flood); // the valid key was still cached
  }, 60_000);

  it('an address past auth.maxFailures gets 429 without a store lookup; other addresses are unaffected', async () => {
    let now = Date.now();
    node = await startTestNode({ handlers: [], auth: { maxFailures: 3, failureWindowMs: 10_000 } }, { clock: () => now });
    const fresh = await keyWith(node, ['read'], 'fresh');
    const attacker = '203.0.113.7';
    for (let i = 0; i < 3; i++) expect((await as(node, randomKey(), attacker)).status).toBe(401);
    const lookups = await keyLookups(node);

    const limited = await as(node, randomKey(), attacker);
    expect(limited.status).toBe(429);
    expect(limited.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(limited.body.type).toBe('https://drover.dev/problems/auth-rate-limited');
    expect(Number(limited.headers['retry-after'])).toBe(10);
    // A key this node has not verified lately is refused too: the guesser cannot tell valid from invalid.
    expect((await as(node, fresh, attacker)).status).toBe(429);
    expect(await keyLookups(node)).toBe(lookups);

    // Another address: a wrong key is a plain 401, a right one works.
    expect((await as(node, randomKey(), '198.51.100.1')).status).toBe(401);
    expect((await as(node, fresh, '198.51.100.1')).status).toBe(200);
    // Now cached, the key passes even from the limited address (clients sharing a NAT with the guesser).
    expect((await as(node, fresh, attacker)).status).toBe(200);
    // Past the 5 s cache lifetime but inside the window: a key the node has verified before is looked up again, not refused.
    now += 6_000;
    expect((await as(node, fresh, attacker)).status).toBe(200);
    expect((await as(node, randomKey(), attacker)).status).toBe(429);

    now += 4_001;
    expect((await as(node, randomKey(), attacker)).status).toBe(401);
  });
});

describe('behind a reverse proxy (server.trustProxy)', () => {
  it('counts failures per forwarded client, and ignores X-Forwarded-For from anyone else', async () => {
    node = await startTestNode({ handlers: [], auth: { maxFailures: 2 }, server: { trustProxy: ['10.1.0.0/16'] } });
    const via = (address: string, forwarded: string) =>
      node!.app.inject({ method: 'GET', url: '/v1/queues', headers: { authorization: `Bearer ${randomKey()}`, 'x-forwarded-for': forwarded }, remoteAddress: address });
    for (let i = 0; i < 2; i++) expect((await via('10.1.0.5', '192.0.2.1')).statusCode).toBe(401);
    expect((await via('10.1.0.5', '192.0.2.1')).statusCode).toBe(429);
    // Another client behind the same proxy is not locked out by the first.
    expect((await via('10.1.0.5', '192.0.2.2')).statusCode).toBe(401);
    // A client not behind the proxy cannot dodge the limit by forging the header.
    for (let i = 0; i < 2; i++) expect((await via('198.51.100.9', `192.0.2.${100 + i}`)).statusCode).toBe(401);
    expect((await via('198.51.100.9', '192.0.2.200')).statusCode).toBe(429);
  });
});
