/**
 * Run `bin/drover start` as a child process, the way users do, and keep track
 * of every PID so a failing test still leaves no process behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const DROVER_BIN = fileURLToPath(new URL('../../bin/drover', import.meta.url));

const live = new Set<ChildProcess>();

export interface ChildNode {
  child: ChildProcess;
  pid: number;
  url: string;
  stdout: string[];
  stderr: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * On PostgreSQL a node's data directory (audit key, exports, snapshots) is
 * `./data` of its working directory, here the repository: give it a temp
 * directory of this test file's instead (removed when the test process
 * exits), never a directory in the repository. SQLite nodes keep theirs
 * beside the database file, as users get it.
 */
let sharedDataDir: string | null = null;
function pgDataDir(options: { config: string; env?: Record<string, string>; cwd?: string }): Record<string, string> {
  if (options.cwd || options.env?.DROVER_DATA_DIR) return {};
  const url = options.env?.DROVER_DATABASE_URL ?? readFileSync(options.config, 'utf8');
  if (!/postgres(ql)?:\/\//.test(url)) return {};
  if (sharedDataDir === null) {
    const dir = mkdtempSync(join(tmpdir(), 'drover-child-data-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    sharedDataDir = dir;
  }
  return { DROVER_DATA_DIR: sharedDataDir };
}

export async function startChildNode(options: { config: string; env?: Record<string, string>; cwd?: string; timeoutMs?: number; args?: string[] }): Promise<ChildNode> {
  const child = spawn(process.execPath, [DROVER_BIN, 'start', '--config', options.config, '--port', '0', ...(options.args ?? [])], {
    cwd: options.cwd,
    env: { ...process.env, DROVER_LOG_LEVEL: 'warn', ...pgDataDir(options), ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  const stdout: string[] = [];
  const stderr: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
  });
  let buffered = '';
  const ready = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`drover did not print its ready line within ${options.timeoutMs ?? 20_000} ms; stderr: ${stderr.join('')}`)), options.timeoutMs ?? 20_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        stdout.push(line);
        const match = /^drover ready .* url=(\S+)$/.exec(line);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]!);
        }
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`drover exited (code ${code}, signal ${signal}) before it was ready; stderr: ${stderr.join('')}`));
    });
  });
  const url = await ready;
  return { child, pid: child.pid!, url, stdout, stderr, exited };
}

/** SIGKILL every child still alive (call from afterEach/afterAll). */
export async function killAllChildren(): Promise<void> {
  const waits: Array<Promise<void>> = [];
  for (const child of live) {
    waits.push(new Promise((resolve) => child.once('exit', () => resolve())));
    child.kill('SIGKILL');
  }
  await Promise.all(waits);
}

export async function api(url: string, key: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const response = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}
