/**
 * `search.payloadIndexes`: the node builds an expression index per listed
 * payload field at start (once: a restart finds them), and `GET /v1/jobs`
 * payload searches answer through them. Both engines. A bad field is a
 * config error naming the key.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/core/config.js';
import { startTestNode } from '../helpers/node.js';

describe('search.payloadIndexes', () => {
  it('builds the indexes at the first start only, and payload searches use the field', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-search-'));
    const config = { handlers: [{ name: 'later', run: async () => undefined }], search: { payloadIndexes: ['orderId', 'customer.id'] } };
    try {
      const first = await startTestNode(config, { dir });
      try {
        const built = first.logLines.find((line) => line.msg === 'payload search indexes built');
        expect(built?.indexes).toHaveLength(2);
        const id = (await first.request('POST', '/v1/jobs', { handler: 'later', payload: { orderId: 'o-9', customer: { id: 'c-3' } }, delayMs: 3_600_000 })).body.id;
        await first.request('POST', '/v1/jobs', { handler: 'later', payload: { orderId: 'o-8' }, delayMs: 3_600_000 });
        expect((await first.request('GET', '/v1/jobs?payload.customer.id=c-3')).body.jobs.map((j: { id: string }) => j.id)).toEqual([id]);
      } finally {
        await first.close();
      }
      const again = await startTestNode(config, { dir });
      try {
        expect(again.logLines.some((line) => line.msg === 'payload search indexes built')).toBe(false);
      } finally {
        await again.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a field that is not a plain path, naming the key', () => {
    expect(() => resolveConfig({ handlers: [], search: { payloadIndexes: ["a'b"] } }, {})).toThrow(/search\.payloadIndexes\[0\]: expected a payload field/);
  });
});
