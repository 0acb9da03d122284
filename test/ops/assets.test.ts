/**
 * Deployment assets (ops-assets/, Dockerfile): checked by the tools that own
 * their formats when they are installed (promtool, amtool, systemd-analyze),
 * and for the properties the operations conventions require. No Docker engine
 * runs here, so the Dockerfile and compose file are checked as text only.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DEFAULTS } from '../../src/core/config.js';
import { hasTool } from './ops-helpers.js';

const root = (path: string): string => fileURLToPath(new URL(`../../${path}`, import.meta.url));
const read = (path: string): string => readFileSync(root(path), 'utf8');
const itWith = (tool: string) => (hasTool(tool) ? it : it.skip);

describe('systemd unit', () => {
  const unit = read('ops-assets/systemd/drover.service');
  const value = (key: string): string | undefined => new RegExp(`^${key}=(.*)$`, 'm').exec(unit)?.[1];

  it('follows the operations conventions', () => {
    expect(value('Type')).toBe('exec');
    expect(value('Restart')).toBe('on-failure');
    expect(value('KillSignal')).toBe('SIGTERM');
    expect(value('KillMode')).toBe('mixed');
    expect(value('User')).toBe('drover');
    expect(value('StateDirectory')).toBe('drover');
    expect(value('ReadWritePaths')).toBe('/var/lib/drover');
    expect(value('MemoryMax')).toBeTruthy();
    expect(value('ExecStart')).toMatch(/drover start --config \S+/);
    expect(value('CapabilityBoundingSet')).toBe('');
    expect(value('UMask')).toBe('0077');
    for (const key of ['NoNewPrivileges', 'ProtectHome', 'PrivateTmp', 'PrivateDevices', 'ProtectKernelTunables', 'ProtectKernelModules', 'ProtectControlGroups', 'RestrictNamespaces', 'LockPersonality', 'RestrictSUIDSGID']) {
      expect(value(key), key).toBe('yes');
    }
    expect(value('ProtectSystem')).toBe('strict');
    expect(value('RestrictAddressFamilies')).toBe('AF_UNIX AF_INET AF_INET6');
    expect(value('SystemCallArchitectures')).toBe('native');
    expect(unit).not.toMatch(/^MemoryDenyWriteExecute=/m); // V8 is a JIT
  });

  it('gives shutdown longer than the grace period plus a margin', () => {
    const stop = Number(/^(\d+)$/.exec(value('TimeoutStopSec') ?? '')?.[1]);
    const grace = Number(/DROVER_SHUTDOWN_GRACE_MS=(\d+)/.exec(unit)?.[1]);
    expect(grace).toBe(DEFAULTS.shutdown.graceMs);
    expect(stop * 1000).toBeGreaterThanOrEqual(grace + 10_000);
  });

  itWith('systemd-analyze')('passes `systemd-analyze verify`', () => {
    const result = spawnSync('systemd-analyze', ['verify', root('ops-assets/systemd/drover.service')], { encoding: 'utf8' });
    // verify reports problems on stderr; a missing /usr/bin/node on the test host is not the unit's fault.
    const problems = result.stderr.split('\n').filter((l) => l.trim() && !/is not executable|No such file or directory/.test(l));
    expect(problems).toEqual([]);
  });
});

describe('Dockerfile', () => {
  const text = read('Dockerfile');
  it('is multi-stage, non-root, under tini, with a readiness healthcheck and SIGTERM', () => {
    expect(text.match(/^FROM /gm)?.length).toBeGreaterThanOrEqual(2);
    expect(text).toMatch(/^FROM \S+ AS build$/m);
    expect(text).toMatch(/^USER drover$/m);
    expect(text).toMatch(/^ENTRYPOINT \["\/usr\/bin\/tini", "--"\]$/m);
    expect(text).toMatch(/^HEALTHCHECK [\s\S]*\/health\/ready/m);
    expect(text).toMatch(/^STOPSIGNAL SIGTERM$/m);
    expect(text).toMatch(/npm ci/);
    expect(text).toMatch(/npm prune --omit=dev/);
  });
  it('copies only what exists', () => {
    for (const [, source] of text.matchAll(/^COPY (?!--from)(\S+)/gm)) {
      for (const path of source!.split(/\s+/)) expect(() => readFileSync(root(path)), path).not.toThrow(/ENOENT/);
    }
  });
});

describe('compose file', () => {
  const compose = parse(read('ops-assets/compose.yml')) as { services: Record<string, { ports?: string[]; volumes?: string[]; init?: boolean; stop_grace_period?: string }> };
  it('runs Drover, PostgreSQL and Prometheus with the rules, publishing on loopback only', () => {
    expect(Object.keys(compose.services)).toEqual(expect.arrayContaining(['drover', 'postgres', 'prometheus']));
    for (const [name, service] of Object.entries(compose.services)) {
      for (const port of service.ports ?? []) expect(port, `${name} port`).toMatch(/^127\.0\.0\.1:/);
    }
    expect(compose.services.prometheus!.volumes!.some((v) => v.startsWith('./prometheus/alerts.yml:'))).toBe(true);
    expect(compose.services.drover!.init).toBe(true);
    expect(Number.parseInt(compose.services.drover!.stop_grace_period!, 10) * 1000).toBeGreaterThan(DEFAULTS.shutdown.graceMs);
  });
});

describe('Prometheus and Alertmanager configs', () => {
  itWith('promtool')('prometheus.yml passes `promtool check config` (and loads the rules)', () => {
    const out = execFileSync('promtool', ['check', 'config', root('ops-assets/prometheus/prometheus.yml')], { encoding: 'utf8' });
    expect(out).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('alertmanager.yml routes page and ticket apart and lets DroverDown inhibit the rest', () => {
    const am = parse(read('ops-assets/alertmanager/alertmanager.yml')) as {
      route: { routes: Array<{ receiver: string; matchers: string[] }> };
      inhibit_rules: Array<{ source_matchers: string[]; target_matchers: string[] }>;
      receivers: Array<{ name: string }>;
    };
    const receiverOf = (severity: string) => am.route.routes.find((r) => r.matchers.includes(`severity="${severity}"`))?.receiver;
    expect(receiverOf('page')).toBeTruthy();
    expect(receiverOf('ticket')).toBeTruthy();
    expect(receiverOf('page')).not.toBe(receiverOf('ticket'));
    expect(am.receivers.map((r) => r.name)).toEqual(expect.arrayContaining([receiverOf('page'), receiverOf('ticket')]));
    expect(am.inhibit_rules.some((r) => r.source_matchers.includes('alertname="DroverDown"') && r.target_matchers.some((m) => m.includes('Drover.+')))).toBe(true);
  });

  itWith('amtool')('alertmanager.yml passes `amtool check-config`', () => {
    const out = execFileSync('amtool', ['check-config', root('ops-assets/alertmanager/alertmanager.yml')], { encoding: 'utf8' });
    expect(out).toMatch(/SUCCESS/);
  });
});
