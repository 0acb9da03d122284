/**
 * Runtimes a test file builds by hand, each on a store in a directory of its
 * own: after each test every one is stopped, its store closed and its
 * directory removed.
 */
import { rmSync } from 'node:fs';
import { afterEach } from 'vitest';
import type { Runtime } from '../../src/runtime/runtime.js';
import type { StorageEngine } from '../../src/store/engine.js';

export interface OpenRuntime {
  runtime: Runtime;
  store: StorageEngine;
  dir: string;
}

/** Call at the top of a test file; push what each test opens onto the list it returns. */
export function closeRuntimesAfterEach(): OpenRuntime[] {
  const open: OpenRuntime[] = [];
  afterEach(async () => {
    for (const { runtime, store, dir } of open.splice(0)) {
      await runtime.stop(0);
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
  return open;
}
