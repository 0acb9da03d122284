/**
 * Start a real node (real SQLite file in a fresh temp dir) in this process and
 * tear it down after: tests drive it through `app.inject()` (no network).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { resolveConfig } from '../../src/core/config.js';
import type { DroverConfig } from '../../src/core/handler.js';
import { startNode, type DroverNode } from '../../src/node/start-node.js';
import type { Tracing } from '../../src/obs/tracing.js';

export const ADMIN_KEY = 'drv_test_admin_key_0123456789abcdef';

export interface TestNode extends DroverNode {
  dir: string;
  logLines: Array<Record<string, unknown>>;
  /** Authorised inject helper. */
  request(method: 'GET' | 'POST' | 'DELETE', url: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any; headers: Record<string, unknown> }>;
  close(): Promise<void>;
}

export async function startTestNode(config: Omit<DroverConfig, 'databaseUrl'> & { databaseUrl?: string }, options: { clock?: () => number; dir?: string; tracing?: Tracing } = {}): Promise<TestNode> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'drover-test-'));
  const logLines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line) logLines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const logger = pino({ level: 'debug', messageKey: 'msg', formatters: { level: (label) => ({ level: label }) } }, sink);
  const resolved = resolveConfig({ databaseUrl: join(dir, 'drover.db'), ...config }, {});
  const node = await startNode({
    config: resolved,
    bootstrapAdminKey: ADMIN_KEY,
    logger,
    listen: false,
    print: () => undefined,
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
      if (!options.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
