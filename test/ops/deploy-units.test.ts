/**
 * The shipped deployment files start Drover as written. The systemd unit's
 * ExecStart runs with the unit's own Environment and WorkingDirectory, and
 * the compose file's drover service with its environment and the config it
 * mounts (on the real PostgreSQL, in a schema of its own) - their absolute
 * paths mapped into a temp directory: /opt/drover is this checkout,
 * /etc/drover and /var/lib/drover are temp directories outside it, the
 * config there importing `drover`. Each must serve /health/ready and stop
 * with exit 0 on SIGTERM within the stop timeout the file sets.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ENV_VARS } from '../../src/core/config.js';
import { parseStoreUrl } from '../../src/core/store-url.js';
import { waitFor } from '../helpers/wait-for.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PG_URL = process.env.DROVER_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const scratch = mkdtempSync(join(tmpdir(), 'drover-units-'));
const pids: number[] = [];
const schemas: string[] = [];
afterAll(async () => {
  for (const pid of pids) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  rmSync(scratch, { recursive: true, force: true });
  if (schemas.length > 0) {
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    for (const schema of schemas) await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
  }
});

/** Variables Drover reads besides the config ones (docs/configuration.md lists them all). */
const OTHER_VARS = ['NODE_ENV', 'DROVER_DATA_DIR', 'DROVER_BOOTSTRAP_ADMIN_KEY', 'DROVER_NODE_ID'];
const KNOWN_VARS = new Set([...Object.keys(ENV_VARS), ...OTHER_VARS]);

/** A fresh /etc/drover and /var/lib/drover; the config is the example, as the docs tell operators to start from. */
function machine(): { map: (path: string) => string; root: string } {
  const root = mkdtempSync(join(scratch, 'host-'));
  mkdirSync(join(root, 'etc/drover'), { recursive: true });
  mkdirSync(join(root, 'var/lib/drover'), { recursive: true });
  cpSync(join(ROOT, 'examples/drover.config.ts'), join(root, 'etc/drover/drover.config.ts'));
  const map = (path: string) => path.replace(/\/opt\/drover(?=\/|$)/g, ROOT.replace(/\/$/, '')).replace(/(^|[\s=])\/(etc\/drover|var\/lib\/drover)/g, `$1${root}/$2`).replace(/^\/usr\/bin\/node\b/, process.execPath);
  return { map, root };
}

async function runUntilReady(argv: string[], cwd: string, env: Record<string, string>, port: number, stopWithinMs: number): Promise<string> {
  const child = spawn(argv[0]!, argv.slice(1), { cwd, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  pids.push(child.pid!);
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}: ${output}`);
    const res = await fetch(`http://127.0.0.1:${port}/health/ready`).catch(() => null);
    return res?.status === 200;
  }, { timeoutMs: 60_000, intervalMs: 200, message: `ready on ${port}` });
  const stopAt = Date.now();
  child.kill('SIGTERM');
  expect(await exited).toBe(0);
  expect(Date.now() - stopAt).toBeLessThan(stopWithinMs);
  return output;
}

const freePort = () => 20_000 + Math.floor(Math.random() * 20_000);

describe('systemd unit, run as written', () => {
  const unit = readFileSync(join(ROOT, 'ops-assets/systemd/drover.service'), 'utf8');
  const values = (key: string) => [...unit.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]!);

  it('sets only variables Drover reads, and every Environment value is one Drover accepts', () => {
    const env = Object.fromEntries(values('Environment').map((v) => v.split(/=(.*)/s).slice(0, 2) as [string, string]));
    for (const name of Object.keys(env)) expect(KNOWN_VARS.has(name), `${name} is not read by Drover`).toBe(true);
    expect(parseStoreUrl(env.DROVER_DATABASE_URL!)).toMatchObject({ engine: 'sqlite', path: '/var/lib/drover/drover.db' });
    expect(values('WorkingDirectory')[0]).toBe('/var/lib/drover');
    expect(values('StateDirectory')[0]).toBe('drover'); // systemd creates /var/lib/drover, the data directory above
    expect(values('ExecStart')[0]).toMatch(/^\/usr\/bin\/node \/opt\/drover\/bin\/drover start --config \/etc\/drover\/drover\.config\.ts$/);
  });

  it('ExecStart with the unit Environment serves, and stops on SIGTERM within TimeoutStopSec', { timeout: 90_000 }, async () => {
    const { map, root } = machine();
    const port = freePort();
    const env: Record<string, string> = {};
    for (const value of values('Environment')) {
      const [name, v] = value.split(/=(.*)/s) as [string, string];
      env[name] = map(v);
    }
    Object.assign(env, { DROVER_PORT: String(port), DROVER_LOG_LEVEL: 'warn' }); // /etc/drover/env (EnvironmentFile) may set these
    const output = await runUntilReady(map(values('ExecStart')[0]!).split(/\s+/), map(values('WorkingDirectory')[0]!), env, port, Number(values('TimeoutStopSec')[0]) * 1000);
    expect(output).toMatch(/drover admin key \(shown once; store it now\): drv_/);
    expect(output).toContain(`store=sqlite channel=production url=http://127.0.0.1:${port}`);
    expect(readFileSync(join(root, 'var/lib/drover/drover.db')).length).toBeGreaterThan(0);
  });
});

describe('compose file, the drover service as written', () => {
  const compose = parse(readFileSync(join(ROOT, 'ops-assets/compose.yml'), 'utf8')) as { services: Record<string, { environment?: Record<string, string>; volumes?: string[]; stop_grace_period?: string; build?: { context: string; dockerfile: string } }> };
  const drover = compose.services.drover!;
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(dockerfile)![1]!) as string[];

  it('mounts an existing config where the image looks for it, and sets only variables Drover reads', () => {
    const configPath = cmd[cmd.indexOf('--config') + 1]!;
    const mount = drover.volumes!.find((v) => v.split(':')[1] === configPath);
    expect(mount, `a volume mounted at ${configPath} (the image's --config)`).toBeDefined();
    expect(() => readFileSync(join(ROOT, 'ops-assets', mount!.split(':')[0]!))).not.toThrow();
    for (const name of Object.keys(drover.environment!)) expect(KNOWN_VARS.has(name), `${name} is not read by Drover`).toBe(true);
    expect(parseStoreUrl(drover.environment!.DROVER_DATABASE_URL!.replace('${POSTGRES_PASSWORD}', 'secret'))).toMatchObject({ engine: 'postgres' });
    expect(join(ROOT, 'ops-assets', drover.build!.context, drover.build!.dockerfile)).toBe(join(ROOT, 'Dockerfile'));
  });

  it('the image CMD with the service environment serves on PostgreSQL, and stops within stop_grace_period', { timeout: 90_000 }, async () => {
    const { map, root } = machine();
    const port = freePort();
    const schema = `drover_t_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
    schemas.push(schema);
    const imageEnv = Object.fromEntries([...dockerfile.matchAll(/^\s*(?:ENV )?(DROVER_\w+|NODE_ENV)=(\S+)/gm)].map((m) => [m[1]!, m[2]!]));
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...imageEnv, ...drover.environment })) env[k] = map(String(v));
    Object.assign(env, {
      // The compose network's host `postgres` is this machine's PostgreSQL; a schema per run.
      DROVER_DATABASE_URL: PG_URL,
      DROVER_PG_SCHEMA: schema,
      DROVER_BOOTSTRAP_ADMIN_KEY: 'drv_compose_replay_admin_key_000001',
      DROVER_HOST: '127.0.0.1',
      DROVER_PORT: String(port),
      DROVER_LOG_LEVEL: 'warn',
    });
    const argv = [process.execPath, ...cmd.slice(1).map((a) => map(a))];
    const output = await runUntilReady(argv, root, env, port, Number.parseInt(drover.stop_grace_period!, 10) * 1000);
    expect(output).toMatch(/drover admin key \S+ created from DROVER_BOOTSTRAP_ADMIN_KEY/);
    expect(output).toContain('store=postgres');
  });
});
