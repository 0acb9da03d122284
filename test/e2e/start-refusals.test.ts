/**
 * A start that is refused changes nothing: a store URL with an unknown scheme
 * (a typo of postgres://) and a port already in use fail with a message that
 * says what to do, and leave no store file and no admin key behind; the next
 * start on a free port prints the one-time key.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { parseStoreUrl } from '../../src/core/store-url.js';
import { DROVER_BIN, killAllChildren, startChildNode } from '../helpers/child-node.js';

const CONFIG = fileURLToPath(new URL('../fixtures/hello.config.ts', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'drover-refusals-'));
let blocker: Server | null = null;
afterEach(async () => {
  await killAllChildren();
  await new Promise<void>((resolve) => (blocker ? blocker.close(() => resolve()) : resolve()));
  blocker = null;
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Run `drover start` to its exit (it is expected to refuse); bounded. */
function refusedStart(cwd: string, env: Record<string, string>, port: number): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [DROVER_BIN, 'start', '--config', CONFIG, '--port', String(port)], { cwd, env: { ...process.env, DROVER_LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  return new Promise((resolve) => child.on('exit', (code) => {
    clearTimeout(timer);
    resolve({ code, output });
  }));
}

describe('store URL', () => {
  it.each(['postgress://drover@db.internal:5432/drover', 'postgres:/db/app', 'mysql://u@h/db', 'https://example.com/drover.db'])('refuses %s and creates nothing', { timeout: 30_000 }, async (url) => {
    const cwd = mkdtempSync(join(root, 'url-'));
    const { code, output } = await refusedStart(cwd, { DROVER_DATABASE_URL: url }, 0);
    expect(code).toBe(78);
    expect(output).toMatch(/DROVER_DATABASE_URL: .*Expected a PostgreSQL URL \(postgres:\/\/.*a SQLite file path/);
    expect(output).not.toMatch(/admin key|drover ready/);
    expect(readdirSync(cwd)).toEqual([]);
  });

  it('accepts postgres://, postgresql://, file:, sqlite: and plain paths', () => {
    expect(parseStoreUrl('postgres://u@h/db')).toEqual({ engine: 'postgres', url: 'postgres://u@h/db' });
    expect(parseStoreUrl('POSTGRESQL://u@h/db')).toMatchObject({ engine: 'postgres' });
    expect(parseStoreUrl('file:///var/lib/drover/drover.db')).toEqual({ engine: 'sqlite', path: '/var/lib/drover/drover.db' });
    expect(parseStoreUrl('file:data/drover.db')).toEqual({ engine: 'sqlite', path: 'data/drover.db' });
    expect(parseStoreUrl('sqlite:drover.db')).toEqual({ engine: 'sqlite', path: 'drover.db' });
    expect(parseStoreUrl('./data/drover.db')).toEqual({ engine: 'sqlite', path: './data/drover.db' });
    expect(parseStoreUrl('C:\\drover\\drover.db')).toMatchObject({ engine: 'sqlite' });
    expect(parseStoreUrl('postgress://u@h/db')).toMatchObject({ problem: expect.stringContaining('did you mean postgres://?') });
  });
});

describe('port in use', () => {
  it('refuses before touching the store; the next start on a free port prints the one-time key', { timeout: 40_000 }, async () => {
    blocker = createServer();
    await new Promise<void>((resolve) => blocker!.listen({ host: '127.0.0.1', port: 0 }, resolve));
    const port = (blocker.address() as { port: number }).port;
    const cwd = mkdtempSync(join(root, 'port-'));
    const env = { DROVER_DATABASE_URL: join(cwd, 'data', 'drover.db') };

    const { code, output } = await refusedStart(cwd, env, port);
    expect(code).toBe(1); // not 78: a supervisor should try again (the port may be free once the old process is gone)
    expect(output).toContain(`cannot listen on 127.0.0.1:${port}: the address is already in use`);
    expect(output).not.toMatch(/admin key|store migrated|drover ready/);
    expect(readdirSync(cwd)).toEqual([]);

    const node = await startChildNode({ config: CONFIG, cwd, env });
    expect(node.stdout.some((l) => /^drover admin key \(shown once; store it now\): drv_\S+$/.test(l))).toBe(true);
    node.child.kill('SIGTERM');
    expect((await node.exited).code).toBe(0);
  });
});
