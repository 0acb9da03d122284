/**
 * Finding 5 (issue 15): deeply nested JSON. About 4,200 levels in an 8 KB body
 * used to answer 500 at intake; just below that the job was stored and every
 * list page holding it answered 500 for every caller. The edge now refuses
 * JSON past `limits.maxJsonDepth` / `limits.maxJsonMembers` with 422 before
 * anything is stored, and read paths survive rows stored before the cap.
 */
import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../helpers/node.js';

const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
const TYPE = 'https://drover.dev/problems/json-too-complex';

let node: TestNode | undefined;
afterEach(async () => {
  await node?.close();
  node = undefined;
});

const PG_URL = process.env.DROVER_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
let pgSchema: string | undefined;
afterEach(async () => {
  if (!pgSchema) return;
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS ${pgSchema} CASCADE`).finally(() => client.end());
  pgSchema = undefined;
});

async function start(limits: { maxJsonDepth?: number; maxJsonMembers?: number } = {}, engine: 'sqlite' | 'postgres' = 'sqlite'): Promise<TestNode> {
  if (engine === 'postgres') pgSchema = `drover_t_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
  node = await startTestNode({
    handlers: [{ name: 'h', remote: true }, { name: 'e', on: 'deep.*', remote: true }],
    limits,
    ...(engine === 'postgres' ? { databaseUrl: PG_URL, postgres: { schema: pgSchema! } } : {}),
  });
  return node;
}

/** Write a payload into a stored job behind the API's back, as a version without the cap could have. */
async function storeRaw(n: TestNode, engine: 'sqlite' | 'postgres', id: string, json: string): Promise<void> {
  if (engine === 'sqlite') {
    const db = new Database(join(n.dir, 'drover.db'));
    try {
      db.prepare('UPDATE jobs SET payload = ? WHERE id = ?').run(json, Number(id));
    } finally {
      db.close();
    }
    return;
  }
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query(`UPDATE ${pgSchema}.jobs SET payload = $1::json WHERE id = $2`, [json, id]);
  } finally {
    await client.end();
  }
}

describe('request JSON limits', () => {
  it('refuses the 4,200-level, 8 KB body with 422 json-too-complex and stores nothing', async () => {
    const n = await start();
    const body = `{"handler":"h","payload":${nested(4200)}}`;
    expect(body.length).toBeLessThan(9_000);
    const refused = await n.request('POST', '/v1/jobs', body);
    expect(refused.status).toBe(422);
    expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(refused.body).toMatchObject({ type: TYPE, status: 422, limit: 'maxJsonDepth', max: 64 });
    const events = await n.request('POST', '/v1/events', `{"name":"deep.x","data":${nested(4200)}}`);
    expect(events.status).toBe(422);
    const list = await n.request('GET', '/v1/jobs');
    expect(list.status).toBe(200);
    expect(list.body.jobs).toEqual([]);
  });

  it('accepts exactly maxJsonDepth levels and refuses one more', async () => {
    const n = await start({ maxJsonDepth: 10 });
    // The body object is level 1, so the payload may nest 9 deep.
    expect((await n.request('POST', '/v1/jobs', `{"handler":"h","payload":${nested(9)}}`)).status).toBe(202);
    const refused = await n.request('POST', '/v1/jobs', `{"handler":"h","payload":${nested(10)}}`);
    expect(refused.status).toBe(422);
    expect(refused.body.max).toBe(10);
  });

  it('counts keys and elements over the whole body (maxJsonMembers)', async () => {
    const n = await start({ maxJsonMembers: 1000 });
    const items = (count: number) => `[${Array.from({ length: count }, (_, i) => i).join(',')}]`;
    expect((await n.request('POST', '/v1/jobs', `{"handler":"h","payload":${items(500)}}`)).status).toBe(202);
    const refused = await n.request('POST', '/v1/jobs', `{"handler":"h","payload":${items(5000)}}`);
    expect(refused.status).toBe(422);
    expect(refused.body).toMatchObject({ type: TYPE, limit: 'maxJsonMembers', max: 1000 });
  });

  it('does not count brackets and commas inside strings', async () => {
    const n = await start({ maxJsonDepth: 4, maxJsonMembers: 50 });
    const text = `[[[{,,,\\"]]]`.repeat(200);
    const accepted = await n.request('POST', '/v1/jobs', JSON.stringify({ handler: 'h', payload: { text } }));
    expect(accepted.status).toBe(202);
    expect(accepted.body.payload.text).toBe(text);
  });

  it('still answers 400 for malformed JSON and keeps prototype-poisoning protection', async () => {
    const n = await start();
    expect((await n.request('POST', '/v1/jobs', '{"handler":')).body.type).toBe('https://drover.dev/problems/malformed-json');
    const poisoned = await n.request('POST', '/v1/jobs', '{"handler":"h","payload":{"__proto__":{"admin":true}}}');
    expect(poisoned.status).toBe(400);
  });
});

describe.each(['sqlite', 'postgres'] as const)('rows stored before the cap (%s)', (engine) => {
  it('list, get and lease answer 200 with the too-deep value omitted, not 500', async () => {
    const n = await start({}, engine);
    const created = await n.request('POST', '/v1/jobs', { handler: 'h', payload: { small: true } });
    expect(created.status).toBe(202);
    const ok = await n.request('POST', '/v1/jobs', { handler: 'h', payload: { fine: 1 } });
    // What an older version could store: deeper than JSON.stringify can serialise.
    await storeRaw(n, engine, created.body.id, `{"a":${nested(engine === 'sqlite' ? 100_000 : 6_000)}}`);
    const list = await n.request('GET', '/v1/jobs');
    expect(list.status).toBe(200);
    const deep = list.body.jobs.find((j: { id: string }) => j.id === created.body.id);
    expect(deep.payload).toBeNull();
    expect(deep.omitted.payload).toMatch(/nested more than 512 levels/);
    expect(list.body.jobs.find((j: { id: string }) => j.id === ok.body.id).payload).toEqual({ fine: 1 });

    const one = await n.request('GET', `/v1/jobs/${created.body.id}`);
    expect(one.status).toBe(200);
    expect(one.body.omitted).toHaveProperty('payload');

    const leased = await n.request('POST', '/v1/workers/lease', { workerId: 'w1', handlers: ['h'], max: 10 });
    expect(leased.status).toBe(200);
    expect(leased.body.jobs).toHaveLength(2);
  });
});
