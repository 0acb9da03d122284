/**
 * A read for a scrape-time gauge, shared by every scrape within `maxAgeMs`
 * (several Prometheus servers, a fast scrape interval) and never failing the
 * scrape: a failed read reports its error and answers null, so the gauge
 * keeps its last value.
 */
import { toError } from '../core/errors.js';

/**
 * @example
 * const alive = cachedRead(() => store.listNodes(), { maxAgeMs: 1_000, clock: Date.now, onError });
 * const rows = await alive(); // null after a failed read
 */
export function cachedRead<T>(read: () => Promise<T>, options: { maxAgeMs: number; clock: () => number; onError: (error: Error) => void }): () => Promise<T | null> {
  let cached: { at: number; value: Promise<T | null> } | null = null;
  return () => {
    const now = options.clock();
    if (!cached || now - cached.at >= options.maxAgeMs) {
      cached = {
        at: now,
        value: read().catch((error: unknown) => {
          options.onError(toError(error));
          return null;
        }),
      };
    }
    return cached.value;
  };
}
