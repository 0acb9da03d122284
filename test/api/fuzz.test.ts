/**
 * Property-based bad input: thousands of malformed bodies, headers, query
 * strings and path ids at every route. Whatever arrives: never a 5xx, every
 * error is problem+json with a stable type, and a refused request writes
 * nothing (a fingerprint of every table is unchanged).
 *
 * The clock is frozen and every handler is remote, so nothing changes the
 * store in the background between a request and the check after it.
 */
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROUTES, type RouteName } from '../../src/api/routes/scopes.js';
import { PROBLEM_BASE } from '../../src/core/errors.js';
import { ADMIN_KEY, startTestNode, type TestNode } from '../helpers/node.js';
import { injectAs, type Answer } from './support.js';

let node: TestNode;
let db: Database.Database;
const NOW = Date.parse('2030-01-01T00:00:00Z');

beforeAll(async () => {
  node = await startTestNode(
    {
      handlers: [
        { name: 'h', on: 'a.b', remote: true },
        { name: 'r', remote: true },
      ],
      queues: { q: {} },
      rateLimit: { enabled: false },
      limits: { maxPayloadBytes: 64 * 1024 },
    },
    { clock: () => NOW },
  );
  db = new Database(join(node.dir, 'drover.db'), { readonly: true, fileMustExist: true });
  // Some state for ids to hit: a queued job, a leased one, a dead one, an event.
  await node.request('POST', '/v1/events', { name: 'a.b', id: 'evt-known' });
  await node.request('POST', '/v1/jobs', { jobs: [{ handler: 'r' }, { handler: 'r' }] });
  await node.request('POST', '/v1/workers/lease', { handlers: ['r'], max: 1 });
});
afterAll(async () => {
  db?.close();
  await node?.close();
});

function fingerprint(): string {
  const row = db
    .prepare(
      `SELECT (SELECT count(*) || ':' || coalesce(sum(updated_at), 0) || ':' || coalesce(sum(attempts), 0) || ':' || coalesce(sum(length(state)), 0) FROM jobs) AS jobs,
              (SELECT count(*) FROM events) AS events,
              (SELECT count(*) || ':' || coalesce(sum(coalesce(ended_at, 0)), 0) FROM attempts) AS attempts,
              (SELECT count(*) || ':' || coalesce(sum(coalesce(revoked_at, 0)), 0) FROM api_keys) AS keys,
              (SELECT coalesce(group_concat(key || '=' || value, ','), '') FROM meta) AS meta`,
    )
    .get() as Record<string, unknown>;
  return JSON.stringify(row);
}

/** The invariant for one request. */
async function check(method: string, url: string, body: string | undefined, headers: Record<string, string>): Promise<Answer> {
  const before = fingerprint();
  const { authorization, ...rest } = headers;
  const key = authorization === undefined ? null : authorization;
  const res = await injectAs(node, null, method, url, body, key === null ? rest : { ...rest, authorization: key });
  const where = `${method} ${url} ${JSON.stringify(headers)} ${body?.slice(0, 200)} -> ${res.status} ${JSON.stringify(res.body)?.slice(0, 300)}`;
  if (res.status >= 500) throw new Error(`5xx: ${where}`);
  if (res.status >= 400) {
    if (!String(res.headers['content-type']).startsWith('application/problem+json')) throw new Error(`not problem+json: ${where}`);
    if (typeof res.body?.type !== 'string' || !res.body.type.startsWith(PROBLEM_BASE) || res.body.status !== res.status) throw new Error(`bad problem body: ${where}`);
    if (fingerprint() !== before) throw new Error(`a refused request changed the store: ${where}`);
  }
  return res;
}

// ---------------------------------------------------------------- generators

const nasty = fc.constantFrom('', ' ', '..', '.', '%', '%zz', '%00', '%2F', '%2e%2e', '\u0000', '☃', '🙂', 'a'.repeat(300), '-1', '0', '1', '2', '3', '1e3', '99999999999999999999', 'null', 'h', 'r', 'q', 'default', 'key_nope', 'evt-known', '<script>', "'; DROP TABLE jobs;--");
const segment = fc.oneof(nasty, fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 20 }));
/** Percent-encode; a lone surrogate becomes bytes that are not UTF-8 at all (good input for a fuzzer). */
const enc = (s: string) => {
  try {
    return encodeURIComponent(s);
  } catch {
    return '%ED%A0%80';
  }
};
// Raw segments keep "/", "%" and friends as they are, so routing and URL decoding see them too.
const encodedSegment = fc.tuple(segment, fc.boolean()).map(([s, raw]) => (raw ? s.replace(/[\s?#\u0000-\u001f\u007f-\uffff]/g, enc) : enc(s)));
const queryKey = fc.oneof(fc.constantFrom('state', 'handler', 'queue', 'limit', 'cursor', 'job', 'lastEventId', 'waitMs'), fc.string({ maxLength: 10 }));
const queryString = fc
  .array(fc.tuple(queryKey, segment), { maxLength: 5 })
  .map((pairs) => (pairs.length === 0 ? '' : `?${pairs.map(([k, v]) => `${enc(k)}=${enc(v)}`).join('&')}`));

const contentType = fc.oneof(
  { weight: 6, arbitrary: fc.constant('application/json') },
  fc.constantFrom('application/json; charset=utf-8', 'application/json; charset=latin1', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/problem+json', ''),
  fc.string({ maxLength: 30 }),
);
const authorization = fc.oneof(
  { weight: 6, arbitrary: fc.constant(`Bearer ${ADMIN_KEY}`) },
  { weight: 1, arbitrary: fc.constantFrom('Bearer', 'Bearer ', 'bearer  drv_x', `Basic ${Buffer.from('a:b').toString('base64')}`, `Bearer ${ADMIN_KEY} extra`, `Bearer ${ADMIN_KEY.slice(0, -1)}`) },
  { weight: 1, arbitrary: fc.string({ maxLength: 60 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')) },
);
const headerValue = fc.string({ maxLength: 80 }).map((s) => s.replace(/[^\x20-\x7e]/g, ''));
const extraHeaders = fc.record(
  { 'x-request-id': headerValue, 'last-event-id': headerValue, traceparent: headerValue, accept: fc.constantFrom('*/*', 'text/html', 'application/xml') },
  { requiredKeys: [] },
);

/** JSON that is wrong in every way a parser or a schema can notice. */
const anyJson = fc.oneof(fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)), fc.json({ maxDepth: 3 }));
const malformedText = fc.oneof(
  fc.string({ maxLength: 200 }),
  anyJson.map((j) => j.slice(0, Math.max(0, j.length - 1))),
  fc.constantFrom('{', '[', '{"a":}', '{"name":"a.b",}', 'null', 'true', '1', '"x"', '{"__proto__":{"polluted":1}}', '{"constructor":{"prototype":{"x":1}}}', `{"a":${'['.repeat(500)}${']'.repeat(500)}}`),
);

/** Bodies with the route's own field names but values of the wrong kind (reaches schema and semantic checks). */
const fieldNames = ['name', 'data', 'id', 'tenant', 'events', 'handler', 'payload', 'queue', 'priority', 'runAt', 'delayMs', 'idempotencyKey', 'maxAttempts', 'concurrencyKey', 'jobs', 'handlers', 'max', 'leaseMs', 'workerId', 'jobId', 'token', 'result', 'error', 'nonRetryable', 'scopes', 'expiresAt', 'expiresInDays'];
const wrongValue = fc.oneof(
  nasty,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom('a.*', 'a..b', 'r', 'h', 'nope', 'read', 'root', '2999-01-01T00:00:00Z', 'tomorrow', -1, 0, 1001, 2 ** 31, 1e308),
  fc.array(fc.oneof(nasty, fc.integer(), fc.constantFrom('r', 'h', 'read')), { maxLength: 4 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }),
);
const nearValid = fc
  .dictionary(fc.constantFrom(...fieldNames), wrongValue, { minKeys: 1, maxKeys: 5 })
  // A lease that is valid would long-poll: keep waits short so the suite stays fast.
  .map((o) => JSON.stringify({ ...o, ...('waitMs' in o || 'handlers' in o ? { waitMs: 0 } : {}) }));

/** Remote-worker reports naming real and made-up jobs with made-up tokens (reaches the 404 and 409 fences). */
const fence = { jobId: fc.oneof(fc.constantFrom('1', '2', '3', '4', '0', '-1', '007'), segment), token: fc.oneof(fc.uuid(), segment) };
const fencedBody = fc
  .oneof(
    fc.record(fence),
    fc.record({ ...fence, result: fc.jsonValue({ maxDepth: 2 }) }),
    fc.record({ ...fence, error: fc.oneof(fc.string({ maxLength: 50 }), wrongValue), nonRetryable: fc.oneof(fc.boolean(), wrongValue) }, { requiredKeys: ['jobId', 'token', 'error'] }),
    fc.record({ ...fence, leaseMs: fc.oneof(fc.integer({ min: 1000, max: 60_000 }), wrongValue) }),
  )
  .map((o) => JSON.stringify(o));
const leaseBody = fc
  .record(
    {
      handlers: fc.oneof(fc.array(fc.oneof(fc.constantFrom('r', 'h', 'nope'), segment), { maxLength: 3 }), wrongValue),
      max: fc.oneof(fc.integer({ min: 0, max: 200 }), wrongValue),
      leaseMs: fc.oneof(fc.integer({ min: 0, max: 4_000_000 }), wrongValue),
      workerId: fc.oneof(fc.constantFrom('w-1', 'a b', ''), segment),
    },
    { requiredKeys: [] },
  )
  .map((o) => JSON.stringify({ ...o, waitMs: 0 }));

const body = fc.oneof(
  { weight: 2, arbitrary: anyJson },
  { weight: 2, arbitrary: malformedText },
  { weight: 3, arbitrary: nearValid },
  { weight: 2, arbitrary: fencedBody },
  { weight: 1, arbitrary: leaseBody },
);

const routes = Object.keys(ROUTES) as RouteName[];

function urlFor(route: RouteName, params: string[]): string {
  let i = 0;
  return route.split(' ')[1]!.replace(/:\w+/g, () => params[i++] ?? 'x');
}

const RUNS = 160;

describe('bad input at every route', () => {
  it.each(routes)('%s: never 5xx, always problem+json, refused means unchanged', async (route) => {
    const [declared] = route.split(' ') as [string];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(declared, declared, declared, 'GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'),
        fc.array(encodedSegment, { minLength: 2, maxLength: 2 }),
        queryString,
        fc.option(body, { nil: undefined }),
        contentType,
        fc.option(authorization, { nil: undefined, freq: 10 }),
        extraHeaders,
        async (method, params, query, payload, type, auth, extra) => {
          const headers: Record<string, string> = { ...extra, ...(auth === undefined ? {} : { authorization: auth }) };
          if (payload !== undefined) headers['content-type'] = type;
          await check(method, urlFor(route, params) + query, method === 'GET' || method === 'OPTIONS' ? undefined : payload, headers);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('unknown paths and methods under /v1 answer 404/405 problem+json', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(encodedSegment, { minLength: 1, maxLength: 4 }), fc.constantFrom('GET', 'POST', 'PUT', 'DELETE'), async (segments, method) => {
        const res = await check(method, `/v1/${segments.join('/')}`, undefined, { authorization: `Bearer ${ADMIN_KEY}` });
        expect(res.status).toBeLessThan(500);
      }),
      { numRuns: 300 },
    );
  });

  it('a batch with one bad item anywhere is refused whole', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 60 }),
        fc.nat(),
        fc.constantFrom({ name: 'a.*' }, { name: 'a..b' }, { name: 'a.b', id: 'has space' }, { name: 'a.b', tenant: '' }),
        fc.constantFrom('events', 'jobs'),
        async (size, at, bad, kind) => {
          const items: unknown[] =
            kind === 'events'
              ? Array.from({ length: size }, (_, i) => ({ name: 'a.b', data: { i } }))
              : Array.from({ length: size }, (_, i) => ({ handler: 'r', payload: { i } }));
          const badItem = kind === 'events' ? bad : { handler: 'r', runAt: 'not a time', delayMs: 5 };
          items.splice(at % (size + 1), 0, badItem);
          const res = await check('POST', `/v1/${kind}`, JSON.stringify({ [kind]: items }), { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' });
          expect(res.status).toBe(422);
        },
      ),
      { numRuns: 150 },
    );
  });
});
