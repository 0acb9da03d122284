/**
 * Start a real node in this process and tear it down after: tests drive it
 * through `app.inject()` (no network). The engine is a parameter: SQLite (a
 * real file in a fresh temp dir) or PostgreSQL (the real server, a schema of
 * its own per node, dropped on close). Without `engine` the node runs on
 * DROVER_TEST_ENGINE, which vitest.config.ts sets per project, so one test
 * file runs unchanged on both engines.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import { pino } from 'pino';
import { resolveConfig } from '../../src/core/config.js';
import type { DroverConfig } from '../../src/core/handler.js';
import { startNode, type DroverNode } from '../../src/node/start-node.js';
import type { Tracing } from '../../src/obs/tracing.js';

export const ADMIN_KEY = 'drv_test_admin_key_0123456789abcdef';

export const TEST_ENGINES = ['sqlite', 'postgres'] as const;
export type TestEngine = (typeof TEST_ENGINES)[number];

export const PG_URL = process.env.DROVER_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** The engine this run's nodes use by default: DROVER_TEST_ENGINE (set per vitest project), else SQLite. */
export function testEngine(): TestEngine {
  const engine = process.env.DROVER_TEST_ENGINE ?? 'sqlite';
  if (!(TEST_ENGINES as readonly string[]).includes(engine)) throw new Error(`DROVER_TEST_ENGINE=${engine} is not an engine; use one of ${TEST_ENGINES.join(', ')}`);
  return engine as TestEngine;
}

export interface TestNode extends DroverNode {
  dir: string;
  logLines: Array<Record<string, unknown>>;
  /** Authorised inject helper. */
  request(method: 'GET' | 'POST' | 'DELETE', url: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any; headers: Record<string, unknown> }>;
  close(): Promise<void>;
}

export interface TestNodeOptions {
  clock?: () => number;
  /** A directory the test owns: the node's data outlives close() (SQLite file; on PostgreSQL, a schema named after the dir, dropped when the test finishes). */
  dir?: string;
  tracing?: Tracing;
  /** The store engine; default `testEngine()`. Ignored when the config names a databaseUrl. */
  engine?: TestEngine;
}

export async function startTestNode(config: Omit<DroverConfig, 'databaseUrl'> & { databaseUrl?: string }, options: TestNodeOptions = {}): Promise<TestNode> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'drover-test-'));
  const logLines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line) logLines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const logger = pino({ level: 'debug', messageKey: 'msg', formatters: { level: (label) => ({ level: label }) } }, sink);
  const store = config.databaseUrl === undefined ? await testStore(options.engine ?? testEngine(), dir, options.dir !== undefined) : null;
  const resolved = resolveConfig({ ...config, databaseUrl: config.databaseUrl ?? store!.databaseUrl, ...(store?.postgres ? { postgres: { ...config.postgres, ...store.postgres } } : {}) }, {});
  const node = await startNode({
    config: resolved,
    bootstrapAdminKey: ADMIN_KEY,
    logger,
    listen: false,
    print: () => undefined,
    // The test's own directory, on PostgreSQL too (which has no file to put it beside): never the repository's ./data.
    dataDir: dir,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.tracing ? { tracing: options.tracing } : {}),
  });
  return {
    ...node,
    dir,
    logLines,
    async request(method, url, body, headers = {}) {
      const response = await node.app.inject({
        method,
        url,
        headers: { authorization: `Bearer ${ADMIN_KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
        ...(body === undefined ? {} : { payload: typeof body === 'string' ? body : JSON.stringify(body) }),
      });
      const text = response.body;
      return { status: response.statusCode, body: text ? safeJson(text) : null, headers: response.headers };
    },
    async close() {
      await node.shutdown(1_000);
      // shutdown() stops waiting for the HTTP server after CLOSE_MS / 2 and leaves the rest to the process exit
      // (a remote worker's long-poll may hold a connection up to 3 s more). In a test the process goes on: end it.
      node.app.server.closeAllConnections();
      await store?.dispose();
      if (!options.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface TestStore {
  databaseUrl: string;
  postgres?: { schema: string; poolMax: number };
  /** Called after the node shut down: drops what only this node used. */
  dispose(): Promise<void>;
}

/**
 * Where a node keeps its data. PostgreSQL: a fresh schema (the node creates it
 * when it migrates), dropped on close; with a caller's `dir` the schema is
 * named after the dir, so a node restarted on the same dir finds its data,
 * and it is dropped when the test finishes instead.
 */
async function testStore(engine: TestEngine, dir: string, persistent: boolean): Promise<TestStore> {
  if (engine === 'sqlite') return { databaseUrl: join(dir, 'drover.db'), dispose: async () => undefined };
  const id = persistent ? createHash('sha256').update(dir).digest('hex') : randomUUID().replace(/-/g, '');
  const schema = `drover_tn_${id.slice(0, 16)}`;
  // Small pools: two test files run at once, each node holds pool + hot + lease pools and a listener.
  const store: TestStore = { databaseUrl: PG_URL, postgres: { schema, poolMax: 4 }, dispose: () => dropSchema(schema) };
  if (!persistent) return store;
  if (!registered.has(schema)) {
    registered.add(schema);
    try {
      // Imported here, not at the top: scripts outside vitest (test/obs/drain-bench.ts) use this helper too.
      const { onTestFinished } = await import('vitest');
      onTestFinished(() => dropSchema(schema));
    } catch {
      registered.delete(schema);
      return store; // started outside a test (a hook): nothing to restart across, drop on close
    }
  }
  return { ...store, dispose: async () => undefined };
}

const registered = new Set<string>();

async function dropSchema(schema: string): Promise<void> {
  registered.delete(schema);
  await dropPgSchema(schema);
}

/** Drop a PostgreSQL schema on the test server, with a client of its own (a long-lived admin pool would be a connection the leak check sees). */
export async function dropPgSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await client.end();
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
