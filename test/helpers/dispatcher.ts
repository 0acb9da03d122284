/**
 * A dispatcher on a real store for tests that drive it directly: its leases go
 * through `lease` (which calls the store's own), every other call to the store.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach } from 'vitest';
import type { ResolvedHandler } from '../../src/core/config.js';
import type { LeasedJob } from '../../src/core/types.js';
import { createLogger } from '../../src/obs/logger.js';
import { Dispatcher, type DispatcherOptions } from '../../src/runtime/dispatcher.js';
import { Lifecycle } from '../../src/runtime/lifecycle.js';
import type { LeaseRequest, StorageEngine } from '../../src/store/engine.js';
import { openSqliteEngine, type SqliteEngine } from '../../src/store/sqlite/sqlite-engine.js';

export function dispatcherOn(
  engine: StorageEngine,
  handlers: ReadonlyMap<string, ResolvedHandler>,
  lease: (request: LeaseRequest) => Promise<LeasedJob[]>,
  extra: Partial<DispatcherOptions> = {},
): Dispatcher {
  const store = new Proxy(engine, {
    get(target, prop) {
      if (prop === 'lease') return lease;
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return new Dispatcher({
    store,
    handlers,
    lifecycle: new Lifecycle(),
    logger: createLogger({ level: 'error', destination: new Writable({ write: (_c, _e, done) => done() }) }),
    workerId: 'w',
    clock: Date.now,
    onRetryScheduled: () => undefined,
    ...extra,
  });
}

/**
 * Migrated SQLite engines in temp dirs, and the dispatchers a test drives on
 * them (`watch`): after each test of the file, the dispatchers stop leasing
 * and go idle, then the engines close and their dirs are removed.
 */
export function sqliteForDispatchers(prefix: string): { engine(): Promise<SqliteEngine>; watch(dispatcher: Dispatcher): Dispatcher } {
  const engines: Array<{ dir: string; engine: SqliteEngine }> = [];
  const dispatchers: Dispatcher[] = [];
  afterEach(async () => {
    for (const dispatcher of dispatchers.splice(0)) {
      dispatcher.stopLeasing();
      await dispatcher.whenIdle();
    }
    for (const { dir, engine } of engines.splice(0)) {
      await engine.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
  return {
    async engine() {
      const dir = mkdtempSync(join(tmpdir(), prefix));
      const engine = await openSqliteEngine({ path: join(dir, 'drover.db') });
      engines.push({ dir, engine });
      await engine.migrate();
      return engine;
    },
    watch(dispatcher) {
      dispatchers.push(dispatcher);
      return dispatcher;
    },
  };
}
