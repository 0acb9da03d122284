/**
 * The checks `drover doctor` runs before (and after) a deploy. Each takes what
 * it needs and never throws: a broken dependency is a `fail` with a fix, so
 * one run reports everything that is wrong at once.
 */
import { mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ResolvedConfig } from '../../core/config.js';
import { DroverError, toError } from '../../core/errors.js';
import type { KeyStore, MetaStore, StoreConnection } from '../../store/engine.js';
import { lastBackupSuccess } from '../backup/create.js';
import { listBackups } from '../backup/retention.js';
import { inDataDir } from '../data-dir.js';
import { fail, pass, skip, warn, type CheckResult } from './check.js';

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost', '[::1]']);
const GIB = 1024 ** 3;
/** A daily backup schedule plus slack; matches the DroverBackupTooOld alert. */
export const BACKUP_MAX_AGE_MS = 26 * 3_600_000;

export async function checkStore(store: StoreConnection): Promise<CheckResult[]> {
  try {
    await store.ping();
  } catch (error) {
    return [fail('store', `the store does not answer: ${toError(error).message}`, 'check DROVER_DATABASE_URL and that the database is running')];
  }
  try {
    const status = await store.migrate({ apply: false });
    if (status.current < status.latest) return [fail('migrations', `schema at version ${status.current}, this binary needs ${status.latest}`, 'run `drover migrate` (take a backup first: `drover backup create`)')];
    return [pass('store', `${store.capabilities.engine} answers`), pass('migrations', `schema current at version ${status.current}`)];
  } catch (error) {
    // A newer Drover migrated this store: `drover migrate` cannot go backwards, only an upgrade (or a restore) helps.
    const hint = error instanceof DroverError && error.code === 'schema_too_new'
      ? 'upgrade this node to the Drover version that migrated the store, or restore a backup taken before that upgrade (`drover backup restore`)'
      : 'run `drover migrate` (take a backup first: `drover backup create`)';
    return [pass('store', `${store.capabilities.engine} answers`), fail('migrations', toError(error).message, hint)];
  }
}

export async function checkAuth(store: Pick<KeyStore, 'listKeys'>, now: number): Promise<CheckResult> {
  try {
    const active = (await store.listKeys()).filter((k) => k.revokedAt === null && (k.expiresAt === null || k.expiresAt > now));
    if (active.length === 0) return warn('auth', 'no active API key: nobody can use the API', 'create one: `drover keys create --name ops --scopes admin`');
    const bootstrap = active.filter((k) => k.name === 'bootstrap-admin');
    if (bootstrap.length > 0) {
      return warn('auth', `the first-start admin key ${bootstrap.map((k) => k.id).join(', ')} is still active`, `create a named admin key (\`drover keys create --name ops --scopes admin\`), switch to it, then \`drover keys revoke ${bootstrap[0]!.id}\``);
    }
    return pass('auth', `authentication on; ${active.length} active key${active.length === 1 ? '' : 's'}, no first-start key`);
  } catch (error) {
    return fail('auth', `cannot list API keys: ${toError(error).message}`, 'fix the store first');
  }
}

export function checkListen(config: ResolvedConfig, behindTlsProxy: boolean): CheckResult {
  const host = config.server.host;
  if (LOOPBACK.has(host)) return pass('listen', `API on ${host}:${config.server.port} (loopback)`);
  if (behindTlsProxy) return pass('listen', `API on ${host}:${config.server.port}, TLS terminated in front (--behind-tls-proxy)`);
  return warn(
    'listen',
    `API listens on ${host}:${config.server.port}, reachable from the network over plain HTTP`,
    'put a TLS-terminating proxy in front (then run doctor with --behind-tls-proxy), or listen on 127.0.0.1',
  );
}

/** The base URLs of a running node: DROVER_URL, else the configured address. */
function nodeUrls(config: ResolvedConfig, env: NodeJS.ProcessEnv): { api: string; metrics: string } {
  const host = config.server.host === '0.0.0.0' || config.server.host === '::' ? '127.0.0.1' : config.server.host;
  const api = (env.DROVER_URL || `http://${host}:${config.server.port}`).replace(/\/$/, '');
  const metrics = config.metrics.port !== null ? `http://${config.metrics.host}:${config.metrics.port}` : api;
  return { api, metrics };
}

/** Scrapes the node's /metrics and compares its clock (the Date header) with ours. */
export async function checkRunningNode(config: ResolvedConfig, env: NodeJS.ProcessEnv, now: () => number): Promise<CheckResult[]> {
  const { metrics } = nodeUrls(config, env);
  let response: Response;
  try {
    response = await fetch(`${metrics}/metrics`, { signal: AbortSignal.timeout(3_000) });
  } catch (error) {
    return [
      warn('metrics', `no node answers at ${metrics}/metrics (${toError(error).message})`, 'start the node (`drover start`), or set DROVER_URL to where it listens; Prometheus must reach this URL'),
      checkClock(now(), null),
    ];
  }
  const body = await response.text();
  const date = response.headers.get('date');
  const results: CheckResult[] = [];
  if (response.status !== 200 || !body.includes('drover_build_info')) {
    results.push(fail('metrics', `${metrics}/metrics answered ${response.status} without Drover metrics`, 'check that DROVER_URL / metrics.port point at a Drover node'));
  } else {
    results.push(pass('metrics', `${metrics}/metrics answers`));
  }
  results.push(checkClock(now(), date ? Date.parse(date) : null));
  return results;
}

/** Sane: after this code was written, and within 5 s of the node's clock when one answered. */
export function checkClock(now: number, nodeTime: number | null): CheckResult {
  if (now < Date.UTC(2025, 0, 1)) return fail('clock', `system time is ${new Date(now).toISOString()}`, 'enable NTP (`timedatectl set-ntp true`)');
  if (nodeTime !== null && Number.isFinite(nodeTime)) {
    // The Date header has one-second resolution.
    const skew = Math.abs(now - nodeTime);
    if (skew > 5_000) return warn('clock', `this host and the node differ by ${Math.round(skew / 1000)} s`, 'enable NTP on both hosts (`timedatectl set-ntp true`); leases and schedules assume synchronised clocks');
    return pass('clock', `${new Date(now).toISOString()}, within ${Math.ceil(skew / 1000)} s of the node`);
  }
  return pass('clock', new Date(now).toISOString());
}

export function checkDataDir(dataDir: string, minFreeBytes = GIB, minFreeRatio = 0.1): CheckResult {
  try {
    const probe = mkdtempSync(join(dataDir, '.doctor-'));
    writeFileSync(join(probe, 'probe'), 'ok');
    rmSync(probe, { recursive: true, force: true });
  } catch (error) {
    return fail('data-dir', `${dataDir} is not writable: ${toError(error).message}`, `create it and give the drover user write access (\`install -d -o drover -g drover -m 0700 ${dataDir}\`), or set DROVER_DATA_DIR`);
  }
  const fs = statfsSync(dataDir);
  const free = fs.bavail * fs.bsize;
  const ratio = fs.blocks > 0 ? fs.bavail / fs.blocks : 1;
  const detail = `${dataDir} writable, ${(free / GIB).toFixed(1)} GiB free (${Math.round(ratio * 100)}%)`;
  if (free < minFreeBytes || ratio < minFreeRatio) return warn('data-dir', detail, 'free space: prune backups (`drover backup prune`), shorten retention, or grow the disk');
  return pass('data-dir', detail);
}

export async function checkBackups(config: ResolvedConfig, dataDir: string, store: Pick<MetaStore, 'getMeta'> | null, now: number): Promise<CheckResult> {
  const dir = inDataDir(dataDir, config.backup.dir);
  let newest: number | null = null;
  try {
    for (const backup of listBackups(dir).backups) newest = Math.max(newest ?? 0, backup.at);
  } catch {
    // No backup directory yet.
  }
  if (store) {
    const recorded = await lastBackupSuccess(store).catch(() => null);
    if (recorded !== null) newest = Math.max(newest ?? 0, recorded);
  }
  if (newest === null) {
    return skip('backup', `no backup found in ${dir}`, 'take one (`drover backup create`) and schedule them (`backup.every` in the config, e.g. "24h", or a timer)');
  }
  const age = now - newest;
  const hours = (age / 3_600_000).toFixed(1);
  if (age > BACKUP_MAX_AGE_MS) return warn('backup', `last backup is ${hours} h old`, 'take one now (`drover backup create`) and check the schedule');
  return pass('backup', `last backup ${hours} h ago`);
}
