/**
 * What a node loads at start (issue 24, worker RSS): the dependencies that
 * only some nodes use are imported at their first use, so a plain `drover
 * start` never loads them, and `drover start --worker-only` loads no API
 * module at all. Each costs megabytes of a worker's memory.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { api, killAllChildren, startChildNode } from '../helpers/child-node.js';
import { ADMIN_KEY, startTestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';

const MODULE_LOG = fileURLToPath(new URL('../helpers/module-log.mjs', import.meta.url));

/** Loaded only when used: a pattern over module paths, and what uses it. */
const LAZY: Array<[RegExp, string]> = [
  [/node_modules\/@modelcontextprotocol\//, 'the MCP SDK (POST /mcp, the mcp action)'],
  [/node_modules\/@opentelemetry\/(sdk-trace|exporter|core|resources)/, 'the OpenTelemetry SDK (tracing on)'],
  [/node_modules\/pg\//, 'the PostgreSQL driver (a postgres:// store)'],
  [/node_modules\/@aws-sdk\//, 'the S3 client (backups to S3)'],
  [/node_modules\/(playwright|vite)/, 'test and build tools'],
  [/node_modules\/(cron-parser|luxon)\//, 'cron-parser and luxon (the first schedule compiled)'],
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

describe('drover start --worker-only', () => {
  it('runs queued jobs and serves only the probes and /metrics; the API modules and Fastify are never loaded', async () => {
    dir = mkdtempSync(join(tmpdir(), 'drover-worker-only-'));
    const db = join(dir, 'drover.db');
    const marker = join(dir, 'ran.txt');
    // A job waiting in the store before the worker starts (the worker has no API to enqueue through).
    const producer = await startTestNode({ handlers: [{ name: 'mark', run() {} }], databaseUrl: db });
    producer.runtime.dispatcher.stopLeasing();
    await producer.runtime.enqueueJobs([{ handler: 'mark', payload: { file: marker } }]);
    await producer.close();

    const log = join(dir, 'modules.txt');
    writeFileSync(
      join(dir, 'drover.config.mjs'),
      "import { writeFileSync } from 'node:fs';\nexport default { handlers: [{ name: 'mark', run(ctx) { writeFileSync(ctx.job.payload.file, 'ran'); } }] };\n",
    );
    const node = await startChildNode({
      config: join(dir, 'drover.config.mjs'),
      cwd: dir,
      args: ['--worker-only'],
      env: { DROVER_DATABASE_URL: db, DROVER_TEST_MODULE_LOG: log, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${MODULE_LOG}`.trim() },
    });
    expect(node.stdout.find((l) => l.startsWith('drover ready'))).toContain(' api=off ');
    await waitFor(() => existsSync(marker), { timeoutMs: 10_000, message: 'the queued job ran' });

    expect((await fetch(`${node.url}/health/live`)).status).toBe(200);
    expect((await fetch(`${node.url}/health/ready`)).status).toBe(200);
    expect(await (await fetch(`${node.url}/metrics`)).text()).toContain('drover_jobs_');
    const api = await fetch(`${node.url}/v1/jobs`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    expect(api.status).toBe(404);
    expect(api.headers.get('content-type')).toContain('application/problem+json');

    const loaded = readFileSync(log, 'utf8').split('\n');
    expect(loaded.filter((m) => /\/api\/(server|routes\/(jobs|intake|console|openapi))\.js$|node_modules\/@fastify\/swagger\//.test(m))).toEqual([]);
    // The probes and /metrics come from node:http (api/probe-server.ts): Fastify, its router and ajv are not loaded either.
    expect(loaded.filter((m) => /node_modules\/(fastify|avvio|find-my-way|@fastify\/[^/]+)\//.test(m))).toEqual([]);
    // Nor ajv: the API's schemas need it, a worker only for its first interrupt input (runtime/interrupt-input.ts).
    expect(loaded.filter((m) => /node_modules\/ajv\//.test(m))).toEqual([]);
    // Nor drover's public entry points (the SDK client and worker): a plain .mjs config that needs no `drover`
    // resolve hook is imported without the require() half either (runtime/user-module.mjs).
    expect(loaded.filter((m) => /\/dist\/(index|sdk\/[^/]+)\.js$/.test(m))).toEqual([]);
    // Nor the CLI's other commands and what only they use: `drover start` parses with a tree of start alone (cli/root-command.ts).
    expect(loaded.filter((m) => /\/dist\/(cli\/program|cli\/commands\/(?!start|options)[^/]+|ops\/doctor\/(?!smoke-handler)[^/]+|ops\/backup\/(pull|restore))\.js$/.test(m))).toEqual([]);
    // Drover's own modules carry no JSDoc: each module's source stays in the heap for the life of the
    // process (tsconfig.build.json; the declarations keep theirs). (Code in a string, as the handler
    // thread's source, keeps its own comments.)
    const ours = loaded.filter((m) => /\/dist\/.*\.js$/.test(m) && !m.includes('node_modules'));
    expect(ours.length).toBeGreaterThan(50);
    expect(ours.filter((m) => /^\s*\/\*\*/m.test(readFileSync(m.startsWith('file:') ? fileURLToPath(m) : m, 'utf8')))).toEqual([]);
    node.child.kill('SIGTERM');
    expect((await node.exited).code).toBe(0);
  });
});
