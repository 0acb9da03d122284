/**
 * A dispatcher on a real store for tests that drive it directly: its leases go
 * through `lease` (which calls the store's own), every other call to the store.
 */
import { Writable } from 'node:stream';
import type { ResolvedHandler } from '../../src/core/config.js';
import type { LeasedJob } from '../../src/core/types.js';
import { createLogger } from '../../src/obs/logger.js';
import { Dispatcher, type DispatcherOptions } from '../../src/runtime/dispatcher.js';
import { Lifecycle } from '../../src/runtime/lifecycle.js';
import type { LeaseRequest, StorageEngine } from '../../src/store/engine.js';

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
