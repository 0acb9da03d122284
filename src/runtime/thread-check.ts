/**
 * Before a node touches its store: start one thread per `isolation: 'thread'`
 * handler, under that handler's heap limit, and wait until it has loaded the
 * handler. A handler its thread cannot load (a syntax error, a missing
 * import, a config only the main thread can resolve) is a start-up error;
 * found at the first job instead, it would spend every job's attempts.
 */
import { DroverError } from '../core/errors.js';
import type { ResolvedHandler } from '../core/config.js';
import { PROGRESS_BYTES, RESULT_HOLD_MS, startHandlerThread, type FromThread } from './handler-thread.js';

/** How long a thread may take to load its handler before the node gives up starting. */
export const THREAD_LOAD_TIMEOUT_MS = 30_000;

/**
 * Throw `config_invalid` naming every thread handler that cannot be loaded, and why.
 * @example
 * await checkThreadHandlers('./drover.config.ts', [...config.handlers.values()]);
 */
export async function checkThreadHandlers(configPath: string, handlers: Iterable<ResolvedHandler>, timeoutMs = THREAD_LOAD_TIMEOUT_MS): Promise<void> {
  const isolated = [...handlers].filter((h) => h.isolation === 'thread' && !h.remote);
  const failures = (await Promise.all(isolated.map(async (h) => {
    const problem = await loadInThread(h, configPath, timeoutMs);
    return problem === null ? null : `${h.name}: ${problem}`;
  }))).filter((f): f is string => f !== null);
  if (failures.length > 0) {
    throw new DroverError('config_invalid', `isolation: 'thread' handlers cannot be loaded in a worker thread, so the node did not start (no job was run): ${failures.join('; ')}`);
  }
}

/** null when the thread loaded the handler, else why it did not. */
function loadInThread(handler: ResolvedHandler, configPath: string, timeoutMs: number): Promise<string | null> {
  const worker = startHandlerThread(handler, configPath, new SharedArrayBuffer(PROGRESS_BYTES), RESULT_HOLD_MS);
  return new Promise<string | null>((resolve) => {
    const timer = setTimeout(() => done(`it did not load within ${timeoutMs} ms`), timeoutMs);
    const done = (problem: string | null) => {
      clearTimeout(timer);
      worker.removeAllListeners();
      void worker.terminate().catch(() => 0);
      resolve(problem);
    };
    worker.on('message', (msg: FromThread) => {
      if (msg.type === 'ready') done(null);
      else if (msg.type === 'load-error') done(msg.error.message);
    });
    worker.on('error', (error: Error & { code?: string }) =>
      done(error.code === 'ERR_WORKER_OUT_OF_MEMORY' ? `loading it exceeded its memory limit of ${handler.memoryMb} MiB (limits.memoryMb)` : error.message));
    worker.on('exit', (code) => done(`its thread exited with code ${code} while loading`));
  });
}
