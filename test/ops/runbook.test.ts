/**
 * The runbook (docs/operations.md) works as written: every block marked
 * ```sh runnable is run, in order, by bash against a live node (a child
 * process) with DROVER_URL, DROVER_API_KEY, DROVER_DATABASE_URL and
 * DROVER_CONFIG set and `drover` on PATH, and must exit 0. Its links to its
 * own sections must land on a heading.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DROVER_BIN, killAllChildren, startChildNode, type ChildNode } from '../helpers/child-node.js';
import { anchorsOf } from './ops-helpers.js';

const RUNBOOK = fileURLToPath(new URL('../../docs/operations.md', import.meta.url));
const CONFIG = fileURLToPath(new URL('../fixtures/hello.config.ts', import.meta.url));
const ADMIN = 'drv_runbook_admin_key_0123456789abcd';
const markdown = readFileSync(RUNBOOK, 'utf8');
const run = promisify(execFile);

interface Block {
  heading: string;
  line: number;
  code: string;
}

function runnableBlocks(text: string): Block[] {
  const blocks: Block[] = [];
  const lines = text.split('\n');
  let heading = '';
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (/^#{1,6}\s/.test(line)) heading = line.replace(/^#+\s*/, '');
    if (/^```sh runnable\s*$/.test(line)) {
      const start = i + 1;
      let end = start;
      while (end < lines.length && !/^```\s*$/.test(lines[end]!)) end++;
      blocks.push({ heading, line: start, code: lines.slice(start, end).join('\n') });
      i = end;
    }
  }
  return blocks;
}

const blocks = runnableBlocks(markdown);
const dir = mkdtempSync(join(tmpdir(), 'drover-runbook-'));
let node: ChildNode;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  const db = join(dir, 'data', 'drover.db');
  mkdirSync(join(dir, 'data'));
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  symlinkSync(DROVER_BIN, join(bin, 'drover'));
  node = await startChildNode({ config: CONFIG, env: { DROVER_DATABASE_URL: db, DROVER_BOOTSTRAP_ADMIN_KEY: ADMIN } });
  env = {
    ...process.env,
    PATH: `${bin}:${process.env.PATH ?? ''}`,
    DROVER_URL: node.url,
    DROVER_API_KEY: ADMIN,
    DROVER_DATABASE_URL: db,
    DROVER_CONFIG: CONFIG,
  };
}, 60_000);

afterAll(async () => {
  await killAllChildren();
  rmSync(dir, { recursive: true, force: true });
});

describe('runbook (docs/operations.md)', () => {
  it('has runnable blocks for the routine tasks', () => {
    const headings = new Set(blocks.map((b) => b.heading));
    for (const task of ['Reset a quarantined handler', 'Pause and resume a queue', 'Retry the dead jobs of a handler', 'Change the log level live', 'Rotate an API key', 'Add or change a handler (rolling restart)', 'Upgrade']) {
      expect(headings.has(task), task).toBe(true);
    }
  });

  it('links only to sections it has', () => {
    const anchors = anchorsOf(markdown);
    const links = [...markdown.matchAll(/\]\(#([^)]+)\)/g)].map((m) => m[1]!);
    expect(links.length).toBeGreaterThan(5);
    expect(links.filter((l) => !anchors.has(l))).toEqual([]);
  });

  for (const block of blocks) {
    // Asynchronous on purpose: a block can take seconds, and a test worker blocked
    // that long misses vitest's RPC deadlines on a loaded machine.
    it(`runs the block under "${block.heading}" (docs/operations.md line ${block.line})`, { timeout: 60_000 }, async () => {
      const result = await run('bash', ['-euo', 'pipefail', '-c', block.code], { cwd: dir, env, encoding: 'utf8', timeout: 55_000 })
        .then(({ stdout, stderr }) => ({ status: 0, stdout, stderr }), (error: { code?: number | string; stdout?: string; stderr?: string }) => ({ status: error.code, stdout: error.stdout, stderr: error.stderr }));
      expect(result.status, `exit ${result.status}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`).toBe(0);
    });
  }
});
