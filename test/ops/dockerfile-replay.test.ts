/**
 * No container engine runs here, so the Dockerfile is replayed: its build
 * stage's COPY steps copy exactly what they name (and what .dockerignore lets
 * through) into a scratch directory, its RUN steps run there in order, the
 * runtime stage is assembled from what they produced, and the image's CMD
 * starts with the image's ENV until its HEALTHCHECK passes. A step that needs
 * a file not copied yet (npm ci running `prepare` before src/ is there:
 * TS5058) fails here as it would in `docker build`.
 *
 * Replayed, not emulated: `npm run …` runs for real. `npm ci` links the
 * checkout's node_modules instead of installing (a real offline install takes
 * minutes on this machine), then runs what npm ci would run after installing -
 * the `prepare` script - unless the step says --ignore-scripts. `npm rebuild`
 * and `npm prune` are skipped: through the link they would rebuild or delete
 * the checkout's own modules. OS package and user steps (apt-get, useradd)
 * are skipped: they change the machine, not the app.
 */
import { execSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait-for.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'drover-docker-replay-'));
const pids: number[] = [];
afterAll(() => {
  for (const pid of pids) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  rmSync(scratch, { recursive: true, force: true });
});

interface Instruction { op: string; args: string; line: number }
interface Stage { name: string; instructions: Instruction[] }

/** Stages and their instructions; continuation lines joined, comments dropped. */
export function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  let pending = '';
  let startLine = 0;
  text.split('\n').forEach((raw, i) => {
    if (pending === '' && /^\s*(#|$)/.test(raw)) return;
    if (pending === '') startLine = i + 1;
    if (/\\\s*$/.test(raw)) {
      pending += `${raw.replace(/\\\s*$/, '')} `;
      return;
    }
    const full = (pending + raw).trim();
    pending = '';
    const [, op, args] = /^(\w+)\s+([\s\S]*)$/.exec(full) ?? [];
    if (!op) return;
    if (op.toUpperCase() === 'FROM') stages.push({ name: /\bAS\s+(\S+)/i.exec(args!)?.[1] ?? `stage${stages.length}`, instructions: [] });
    stages.at(-1)?.instructions.push({ op: op.toUpperCase(), args: args!.trim(), line: startLine });
  });
  return stages;
}

/** .dockerignore: is this context path left out of the build context? */
function ignoredBy(patterns: string[], path: string): boolean {
  const first = path.replace(/^\.\//, '').split('/')[0]!;
  return patterns.some((p) => {
    const re = new RegExp(`^${p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`);
    return re.test(first) || re.test(basename(path));
  });
}

/** Where a path inside the image lives in the replay. */
function inImage(dir: string, workdir: string, path: string): string {
  return path.startsWith('/') ? join(dir, path) : join(dir, workdir, path);
}

const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const dockerignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));

/** Replay one stage's COPY/WORKDIR/RUN/ENV in `dir`; returns its ENV and WORKDIR. */
function replayStage(stage: Stage, dir: string, others: Map<string, { dir: string; workdir: string }>): { workdir: string; env: Record<string, string>; cmd: string[]; healthcheck: string[] } {
  let workdir = '/';
  const env: Record<string, string> = {};
  let cmd: string[] = [];
  let healthcheck: string[] = [];
  for (const { op, args, line } of stage.instructions) {
    const where = `Dockerfile:${line} ${op} ${args.slice(0, 80)}`;
    if (op === 'WORKDIR') {
      workdir = args;
      mkdirSync(join(dir, workdir), { recursive: true });
    } else if (op === 'ENV') {
      for (const [, k, v] of args.matchAll(/(\w+)=(\S+)/g)) env[k!] = v!;
    } else if (op === 'CMD') {
      cmd = JSON.parse(args) as string[];
    } else if (op === 'HEALTHCHECK') {
      healthcheck = JSON.parse(/CMD\s+(\[.*\])$/.exec(args)![1]!) as string[];
    } else if (op === 'COPY') {
      const parts = args.split(/\s+/);
      const from = parts[0]!.startsWith('--from=') ? parts.shift()!.slice('--from='.length) : null;
      const dest = parts.pop()!;
      for (const source of parts) {
        let origin: string;
        if (from) {
          const stageDir = others.get(from);
          expect(stageDir, `${where}: no stage named ${from}`).toBeDefined();
          origin = inImage(stageDir!.dir, stageDir!.workdir, source);
          expect(existsSync(origin), `${where}: ${source} does not exist in stage ${from} at this point`).toBe(true);
        } else {
          origin = join(ROOT, source);
          expect(existsSync(origin), `${where}: ${source} is not in the build context`).toBe(true);
          expect(ignoredBy(dockerignore, source), `${where}: ${source} is excluded by .dockerignore`).toBe(false);
        }
        const target = dest.endsWith('/') || parts.length > 1 ? join(inImage(dir, workdir, dest), basename(source)) : inImage(dir, workdir, dest);
        mkdirSync(dirname(target), { recursive: true });
        // node_modules is a link to the checkout's (see the file comment); copying it would take longer than the rest together.
        if (basename(source) === 'node_modules') symlinkSync(join(ROOT, 'node_modules'), target);
        else cpSync(origin, target, { recursive: true, dereference: false });
      }
    } else if (op === 'RUN') {
      for (const command of args.split('&&').map((c) => c.trim())) runStep(command, join(dir, workdir), where);
    }
  }
  return { workdir, env, cmd, healthcheck };
}

function runStep(command: string, cwd: string, where: string): void {
  if (/^(apt-get|rm -rf \/var\/lib\/apt|groupadd|useradd|install -d)\b/.test(command)) return;
  if (/^npm ci\b/.test(command)) {
    symlinkSync(join(ROOT, 'node_modules'), join(cwd, 'node_modules'));
    if (!/--ignore-scripts/.test(command)) exec('npm run prepare --if-present', cwd, `${where} (npm ci runs prepare after installing)`);
    return;
  }
  if (/^npm (rebuild|prune)\b/.test(command)) return;
  if (/^npm run \S+$/.test(command)) return exec(command, cwd, where);
  throw new Error(`${where}: the replay does not know the step "${command}"; teach test/ops/dockerfile-replay.test.ts`);
}

function exec(command: string, cwd: string, where: string): void {
  try {
    execSync(command, { cwd, stdio: 'pipe', timeout: 180_000, env: { ...process.env, npm_config_offline: 'true' } });
  } catch (error) {
    const e = error as { stdout?: Buffer; stderr?: Buffer };
    throw new Error(`${where}: \`${command}\` failed:\n${e.stdout?.toString() ?? ''}${e.stderr?.toString() ?? ''}`);
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('Dockerfile, replayed', () => {
  it('parses into a build stage and a runtime stage', () => {
    const stages = parseDockerfile(dockerfile);
    expect(stages.map((s) => s.name)).toEqual(['build', 'stage1']);
    expect(stages[1]!.instructions.find((i) => i.op === 'USER')?.args).toBe('drover');
  });

  it('catches npm ci running the build before the sources are copied (the TS5058 mistake)', { timeout: 120_000 }, () => {
    const broken = dockerfile.replace(/RUN npm ci --ignore-scripts[^\n]*/, 'RUN npm ci --no-audit --no-fund');
    const dir = join(scratch, 'broken');
    mkdirSync(dir);
    expect(() => replayStage(parseDockerfile(broken)[0]!, dir, new Map())).toThrow(/npm ci runs prepare[\s\S]*TS5058|tsconfig\.build\.json/);
  });

  it('builds, assembles the runtime image, and the CMD serves until the HEALTHCHECK passes', { timeout: 240_000 }, async () => {
    const [build, runtime] = parseDockerfile(dockerfile);
    const buildDir = join(scratch, 'build');
    const built = replayStage(build!, buildDir, new Map());
    expect(existsSync(join(buildDir, built.workdir, 'dist/cli/main.js'))).toBe(true);

    const imageDir = join(scratch, 'image');
    const image = replayStage(runtime!, imageDir, new Map([['build', { dir: buildDir, workdir: built.workdir }]]));
    // As compose.yml mounts it: the example config at /etc/drover/drover.config.ts, outside the package.
    const etc = join(imageDir, 'etc/drover');
    mkdirSync(etc, { recursive: true });
    cpSync(join(ROOT, 'examples/drover.config.ts'), join(etc, 'drover.config.ts'));

    const port = await freePort();
    const mapPath = (v: string) => (v.startsWith('/') ? join(imageDir, v) : v);
    const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: imageDir };
    for (const [k, v] of Object.entries(image.env)) env[k] = /^DROVER_(DATABASE_URL|DATA_DIR)$/.test(k) ? mapPath(v) : v;
    Object.assign(env, { DROVER_HOST: '127.0.0.1', DROVER_PORT: String(port), DROVER_BOOTSTRAP_ADMIN_KEY: 'drv_docker_replay_admin_key_0000001' });
    mkdirSync(env.DROVER_DATA_DIR!, { recursive: true });
    const [exe, ...args] = image.cmd;
    expect(exe).toBe('node');
    const child = spawn(process.execPath, args.map((a) => (a.startsWith('/') ? mapPath(a) : a)), { cwd: join(imageDir, image.workdir), env, stdio: ['ignore', 'pipe', 'pipe'] });
    pids.push(child.pid!);
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const health = image.healthcheck.map((a) => a.replace('127.0.0.1:7070', `127.0.0.1:${port}`));
    expect(health[0]).toBe('node');
    await waitFor(() => {
      if (child.exitCode !== null) throw new Error(`the CMD exited with ${child.exitCode}: ${output}`);
      try {
        execSync(`${JSON.stringify(process.execPath)} ${health.slice(1).map((a) => JSON.stringify(a)).join(' ')}`, { stdio: 'ignore', timeout: 5_000 });
        return true;
      } catch {
        return false;
      }
    }, { timeoutMs: 60_000, intervalMs: 250, message: 'the HEALTHCHECK passes' });
    // Ready is served a moment before the ready line is printed (the first admin key comes once the node serves).
    await waitFor(() => /drover ready handlers=\d+ .*store=sqlite/.test(output), { timeoutMs: 10_000, message: 'the ready line' });
    child.kill('SIGTERM');
    expect(await new Promise((resolve) => child.on('exit', resolve))).toBe(0);
  });
});
