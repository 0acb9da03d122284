/**
 * `drover doctor`: the readiness gate. Loads and validates the config, opens
 * the store read-only (no lock, no migration), and runs every check; the caller
 * prints the report and exits non-zero when any check failed.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { resolveConfig, type ResolvedConfig } from '../../core/config.js';
import { toError } from '../../core/errors.js';
import type { StorageEngine } from '../../store/engine.js';
import { openStore, sqliteFileOf } from '../../store/open.js';
import { dataDirFor, inDataDir } from '../data-dir.js';
import { fail, pass, skip, type CheckResult } from './check.js';
import { checkAuth, checkBackups, checkDataDir, checkListen, checkRunningNode, checkStore } from './checks.js';
import { checkFileModes } from './file-modes.js';

export interface DoctorOptions {
  /** Loads the config module; throws when it is missing or invalid. */
  loadConfig: () => Promise<unknown>;
  env?: NodeJS.ProcessEnv;
  clock?: () => number;
  /** The operator says a TLS-terminating proxy fronts a public listener. */
  behindTlsProxy?: boolean;
}

/**
 * @example
 * const results = await runDoctor({ loadConfig: () => loadConfigModule('drover.config.ts') });
 * process.exitCode = results.some((r) => r.status === 'fail') ? 1 : 0;
 */
export async function runDoctor(options: DoctorOptions): Promise<CheckResult[]> {
  const env = options.env ?? process.env;
  const clock = options.clock ?? Date.now;
  let config: ResolvedConfig;
  try {
    config = resolveConfig(await options.loadConfig(), env);
  } catch (error) {
    return [fail('config', toError(error).message, 'fix the config (the message names the key), or pass --config FILE')];
  }
  const results: CheckResult[] = [pass('config', `valid: ${config.handlers.size} handlers, ${config.queues.size} queues`)];

  let store: StorageEngine | null = null;
  const file = sqliteFileOf(config.databaseUrl);
  if (file !== null && !existsSync(file)) {
    // Opening would create an empty store, and the report would describe that one.
    results.push(fail('store', `no SQLite store at ${resolve(file)}`, 'check DROVER_DATABASE_URL (or --config); `drover start` creates the store on its first run'));
  } else {
    try {
      store = await openStore(config.databaseUrl, { lock: false });
    } catch (error) {
      results.push(fail('store', `cannot open ${redact(config.databaseUrl)}: ${toError(error).message}`, 'check DROVER_DATABASE_URL and that the database is running'));
    }
  }
  try {
    if (store) {
      const storeResults = await checkStore(store);
      results.push(...storeResults);
      if (storeResults.every((r) => r.status === 'pass')) results.push(await checkAuth(store, clock()));
      else results.push(skip('auth', 'store not usable', 'fix the store first'));
    } else {
      results.push(skip('auth', 'store not usable', 'fix the store first'));
    }
    results.push(checkListen(config, options.behindTlsProxy === true));
    results.push(...(await checkRunningNode(config, env, clock)));
    const dataDir = dataDirFor(config.databaseUrl, env);
    results.push(checkDataDir(dataDir));
    results.push(checkFileModes(privatePaths(config, dataDir)));
    results.push(await checkBackups(config, dataDir, store, clock()));
  } finally {
    await store?.close();
  }
  return results;
}

/** What must be private: the data directory and, wherever they are configured, the store files, backups and audit export. */
function privatePaths(config: ResolvedConfig, dataDir: string): string[] {
  const file = sqliteFileOf(config.databaseUrl);
  const store = file === null ? [] : ['', '-wal', '-shm'].map((suffix) => resolve(file) + suffix);
  return [dataDir, ...store, inDataDir(dataDir, config.backup.dir), inDataDir(dataDir, config.audit.exportDir)];
}

function redact(url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^:/@]*):[^@]*@/i, '$1:***@');
}
