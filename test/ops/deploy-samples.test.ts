/**
 * The deployment samples beside the unit and the compose file, each checked by
 * its own tool where this machine has it: `.env.example`-style variables
 * (ops-assets/.env.example) against what Drover reads; the nginx reverse proxy
 * with `nginx -t`; the backup, prune and verify timers with
 * `systemd-analyze verify`; the verify script run for real against a real
 * backup (good, then damaged) and the textfile it writes; the Vector config
 * with `vector validate` when Vector is installed (it is not in Debian's
 * archive, so here only its structure is checked).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ENV_VARS } from '../../src/core/config.js';
import { DROVER_BIN } from '../helpers/child-node.js';
import { selfSigned } from '../helpers/tls.js';
import { drover } from './cli.js';
import { hasTool, withTool } from './ops-helpers.js';

const root = (path: string): string => fileURLToPath(new URL(`../../${path}`, import.meta.url));
const read = (path: string): string => readFileSync(root(path), 'utf8');
const scratch = mkdtempSync(join(tmpdir(), 'drover-samples-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('.env.example', () => {
  const text = read('ops-assets/.env.example');
  const named = new Set([...text.matchAll(/^#?([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]!));

  it('lists every variable docs/configuration.md documents, and only those (plus the OTLP metrics endpoint)', () => {
    const docs = read('docs/configuration.md');
    const section = docs.slice(docs.indexOf('## Environment variables'), docs.indexOf('\n## ', docs.indexOf('## Environment variables') + 5));
    const documented = new Set([...section.matchAll(/^\| `([A-Z][A-Z0-9_]+)`/gm)].map((m) => m[1]!));
    for (const [, name] of section.matchAll(/\(or `([A-Z][A-Z0-9_]+)`\)/g)) documented.add(name!);
    expect(documented.size).toBeGreaterThan(15);
    // A documented name ending in `_` is a prefix (`DROVER_SECRET_` + a name): the sample shows one such variable.
    const prefixes = [...documented].filter((name) => name.endsWith('_'));
    const covered = (name: string) => (name.endsWith('_') ? [...named].some((n) => n.startsWith(name) && n !== name) : named.has(name));
    for (const name of [...documented, ...Object.keys(ENV_VARS)]) expect(covered(name), name).toBe(true);
    for (const name of named) expect(documented.has(name) || prefixes.some((p) => name.startsWith(p)) || /^OTEL_|^NODE_ENV$/.test(name), `${name} is not documented`).toBe(true);
  });

  it('sets nothing by default and marks the secrets as placeholders', () => {
    expect(text.match(/^[A-Z]/gm)).toBeNull(); // every line is a comment: copy and uncomment
    expect(text).toMatch(/DROVER_BOOTSTRAP_ADMIN_KEY=drv_PLACEHOLDER/);
  });
});

describe('nginx reverse proxy', () => {
  const conf = read('ops-assets/nginx/drover.conf');

  it('terminates TLS, checks readiness, streams SSE unbuffered with a long read timeout, hides /metrics', () => {
    expect(conf).toMatch(/listen 443 ssl/);
    expect(conf).toMatch(/location = \/health\/ready \{/);
    const stream = /location = \/v1\/stream \{([^}]*)\}/.exec(conf)?.[1] ?? '';
    expect(stream).toMatch(/proxy_buffering off;/);
    expect(stream).toMatch(/proxy_read_timeout 1h;/);
    expect(conf).toMatch(/location = \/metrics \{\s*return 404;/);
    expect(conf).toMatch(/server 127\.0\.0\.1:7070/);
  });

  withTool('nginx')('passes `nginx -t` (with test certificates in place of the placeholders)', () => {
    const dir = mkdtempSync(join(scratch, 'nginx-'));
    const cert = selfSigned(dir, 'proxy');
    const site = conf
      .replace('/etc/letsencrypt/live/drover.example.com/fullchain.pem', cert.cert)
      .replace('/etc/letsencrypt/live/drover.example.com/privkey.pem', cert.key)
      .replace(/listen (\[::\]:)?(80|443)/g, (_m, v6: string | undefined, port: string) => `listen ${v6 ?? '127.0.0.1:'}${port === '80' ? 18080 : 18443}`);
    writeFileSync(join(dir, 'drover.conf'), site);
    writeFileSync(
      join(dir, 'nginx.conf'),
      `pid ${dir}/nginx.pid;\nerror_log ${dir}/error.log;\nevents {}\nhttp {\n  access_log off;\n  include ${dir}/drover.conf;\n}\n`,
    );
    const result = spawnSync('nginx', ['-t', '-p', dir, '-c', join(dir, 'nginx.conf')], { encoding: 'utf8' });
    expect(result.stderr).toMatch(/syntax is ok/);
    expect(result.stderr).toMatch(/test is successful/);
    expect(result.status).toBe(0);
  });
});

describe('systemd timers for backup, prune and verify', () => {
  const units = ['drover-backup', 'drover-backup-prune', 'drover-backup-verify'];

  it('each timer runs its service on a schedule that survives downtime; the services are hardened oneshots', () => {
    for (const unit of units) {
      const timer = read(`ops-assets/systemd/${unit}.timer`);
      const service = read(`ops-assets/systemd/${unit}.service`);
      expect(timer).toMatch(/^OnCalendar=\S/m);
      expect(timer).toMatch(/^Persistent=true$/m);
      expect(service).toMatch(/^Type=oneshot$/m);
      for (const line of ['User=drover', 'ProtectSystem=strict', 'NoNewPrivileges=yes', 'CapabilityBoundingSet=', 'UMask=0077']) expect(service, `${unit}: ${line}`).toMatch(new RegExp(`^${line}$`, 'm'));
    }
    expect(read('ops-assets/systemd/drover-backup.service')).toMatch(/drover backup create$/m);
    expect(read('ops-assets/systemd/drover-backup-prune.service')).toMatch(/drover backup prune --yes/);
    expect(read('ops-assets/systemd/drover-backup-verify.service')).toMatch(/drover-backup-verify\.sh$/m);
  });

  withTool('systemd-analyze')('pass `systemd-analyze verify`', () => {
    const files = units.flatMap((unit) => [`${unit}.service`, `${unit}.timer`]).map((f) => root(`ops-assets/systemd/${f}`));
    const result = spawnSync('systemd-analyze', ['verify', ...files], { encoding: 'utf8' });
    const problems = result.stderr.split('\n').filter((l) => l.trim() && !/is not executable|No such file or directory/.test(l));
    expect(problems).toEqual([]);
  });

  it('the verify script records a good backup as 1 and a damaged one as 0 for node_exporter', { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(scratch, 'verify-'));
    const env = { DROVER_DATABASE_URL: join(dir, 'data', 'drover.db'), DROVER_DATA_DIR: join(dir, 'data') };
    mkdirSync(join(dir, 'data'));
    mkdirSync(join(dir, 'textfile'));
    expect((await drover(['migrate'], env)).code).toBe(0);
    const created = await drover(['backup', 'create', '--out', join(dir, 'backups')], env);
    expect(created.code, created.stderr).toBe(0);
    const script = root('ops-assets/systemd/drover-backup-verify.sh');
    const run = () => spawnSync(script, [], { encoding: 'utf8', env: { ...process.env, ...env, DROVER_BACKUP_DIR: join(dir, 'backups'), TEXTFILE_DIR: join(dir, 'textfile'), DROVER: DROVER_BIN }, timeout: 60_000 });
    const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(readFileSync(join(dir, 'textfile', 'drover_backup_verify.prom'), 'utf8'))?.[1]);

    const good = run();
    expect(good.status, good.stderr).toBe(0);
    expect(value('drover_backup_verify_success')).toBe(1);
    expect(Math.abs(value('drover_backup_verify_timestamp_seconds') - Date.now() / 1000)).toBeLessThan(120);
    expect(readdirSync(join(dir, 'textfile'))).toEqual(['drover_backup_verify.prom']); // no temp file left

    const [backup] = readdirSync(join(dir, 'backups')).filter((n) => n.startsWith('drover-backup-'));
    const file = readdirSync(join(dir, 'backups', backup!)).find((n) => n.endsWith('.db'))!;
    appendFileSync(join(dir, 'backups', backup!, file), 'damage');
    const bad = run();
    expect(bad.status).toBe(1);
    expect(value('drover_backup_verify_success')).toBe(0);
  });
});

describe('Vector log shipping', () => {
  const text = read('ops-assets/vector/vector.yaml');
  const config = parse(text) as { sources: Record<string, { type: string }>; transforms: Record<string, { type: string; inputs: string[]; condition?: string }>; sinks: Record<string, { type: string; inputs: string[] }> };

  it('sends everything to the hot sink and info and above to the cold one', () => {
    expect(config.sources.drover_journal?.type).toBe('journald');
    expect(config.sinks.hot?.inputs).toEqual(['drover_json']);
    expect(config.sinks.cold?.inputs).toEqual(['drover_cold']);
    expect(config.transforms.drover_cold).toMatchObject({ type: 'filter', inputs: ['drover_json'], condition: '.level != "trace" && .level != "debug"' });
  });

  (hasTool('vector') ? it : it.skip)('passes `vector validate` (Vector is not in Debian; skipped where it is not installed)', () => {
    const out = execFileSync('vector', ['validate', '--no-environment', root('ops-assets/vector/vector.yaml')], { encoding: 'utf8' });
    expect(out).toMatch(/Validated/);
  });
});
