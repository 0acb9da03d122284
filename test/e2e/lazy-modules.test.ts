/**
 * What a node loads at start (issue 24, worker RSS): the dependencies that
 * only some nodes use are imported at their first use, so a plain `drover
 * start` never loads them. Each costs megabytes of a worker's memory.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { api, killAllChildren, startChildNode } from '../helpers/child-node.js';
import { ADMIN_KEY } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';

const MODULE_LOG = fileURLToPath(new URL('../helpers/module-log.mjs', import.meta.url));

/** Loaded only when used: a pattern over module paths, and what uses it. */
const LAZY: Array<[RegExp, string]> = [
  [/node_modules\/@modelcontextprotocol\//, 'the MCP SDK (POST /mcp, the mcp action)'],
  [/node_modules\/@opentelemetry\/(sdk-trace|exporter|core|resources)/, 'the OpenTelemetry SDK (tracing on)'],
  [/node_modules\/pg\//, 'the PostgreSQL driver (a postgres:// store)'],
  [/node_modules\/@aws-sdk\//, 'the S3 client (backups to S3)'],
  [/node_modules\/(playwright|vite)/, 'test and build tools'],
];

let dir = '';
afterEach(async () => {
  await killAllChildren();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a node loads at start only what it uses', () => {
  it('a SQLite node with tracing off loads neither the MCP SDK, the OpenTelemetry SDK nor pg, until asked', async () => {
    dir = mkdtempSync(join(tmpdir(), 'drover-lazy-'));
    const log = join(dir, 'modules.txt');
    writeFileSync(join(dir, 'drover.config.mjs'), "export default { handlers: [{ name: 'noop', run() {} }] };\n");
    const node = await startChildNode({
      config: join(dir, 'drover.config.mjs'),
      cwd: dir,
      env: {
        DROVER_DATABASE_URL: join(dir, 'drover.db'),
        DROVER_BOOTSTRAP_ADMIN_KEY: ADMIN_KEY,
        DROVER_TEST_MODULE_LOG: log,
        NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${MODULE_LOG}`.trim(),
        OTEL_EXPORTER_OTLP_ENDPOINT: '',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '',
      },
    });
    expect((await api(node.url, ADMIN_KEY, 'POST', '/v1/jobs', { handler: 'noop', payload: {} })).status).toBe(202);
    const loaded = () => readFileSync(log, 'utf8').split('\n');
    // The log works: it holds what every node loads.
    expect(loaded().some((m) => /node_modules\/fastify\//.test(m))).toBe(true);
    for (const [pattern, what] of LAZY) expect(loaded().filter((m) => pattern.test(m)), `${what} was loaded at start`).toEqual([]);

    // First use loads it: an MCP request is answered (the SDK arrives with it).
    const initialize = await api(node.url, ADMIN_KEY, 'POST', '/mcp', { jsonrpc: '2.0', id: 1, method: 'tools/list' });
    expect(initialize.status).toBe(200);
    await waitFor(() => loaded().some((m) => /node_modules\/@modelcontextprotocol\//.test(m)) || undefined, { timeoutMs: 5_000, message: 'the MCP SDK loaded' });
    node.child.kill('SIGTERM');
    expect((await node.exited).code).toBe(0);
  });
});
