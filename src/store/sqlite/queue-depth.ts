/**
 * In-memory count of unfinished jobs (scheduled + queued + running) per queue,
 * for `maxDepth` checks without a COUNT(*) on every insert. It is exact only
 * because the pidfile lock makes this process the store's only writer: it is
 * loaded once from the database and then changed by every committed transition.
 *
 * Write operations record deltas in their `WriteEffects`; the group commit
 * folds them into the batch and applies the batch here after COMMIT, so a
 * rolled-back operation or batch never moves the counters.
 */
import { QueueFullError } from '../../core/errors.js';
import type { EnqueueOptions } from '../engine.js';
import { Woken } from '../woken.js';

/** Side effects of one write operation (or of a batch of them). */
export interface WriteEffects {
  /** Change in unfinished jobs per queue. */
  depth: Map<string, number>;
  /** Due (queued) work, by queue and handler: listeners are told after COMMIT. */
  woken: Woken;
}

export function createEffects(): WriteEffects {
  return { depth: new Map(), woken: new Woken() };
}

export function mergeEffects(into: WriteEffects, from: WriteEffects): void {
  for (const [queue, delta] of from.depth) into.depth.set(queue, (into.depth.get(queue) ?? 0) + delta);
  into.woken.merge(from.woken);
}

export function addDepth(effects: WriteEffects, queue: string, delta: number): void {
  effects.depth.set(queue, (effects.depth.get(queue) ?? 0) + delta);
}

export class QueueDepths {
  readonly #committed = new Map<string, number>();

  /** Replace the counters with a fresh count from the database. */
  load(rows: Iterable<{ queue: string; n: number }>): void {
    this.#committed.clear();
    for (const row of rows) this.#committed.set(row.queue, row.n);
  }

  /** Apply a committed batch's deltas. */
  apply(effects: WriteEffects): void {
    for (const [queue, delta] of effects.depth) {
      const next = (this.#committed.get(queue) ?? 0) + delta;
      if (next === 0) this.#committed.delete(queue);
      else this.#committed.set(queue, next);
    }
  }

  /**
   * Throw `QueueFullError` if one more job in `queue` would exceed its limit,
   * counting what is committed plus what this batch and this op have added.
   */
  checkRoom(queue: string, options: EnqueueOptions | undefined, batch: Readonly<WriteEffects>, own: WriteEffects): void {
    const limit = options?.queueLimits?.get(queue);
    if (!limit) return;
    const depth = (this.#committed.get(queue) ?? 0) + (batch.depth.get(queue) ?? 0) + (own.depth.get(queue) ?? 0);
    if (depth + 1 > limit.maxDepth) throw new QueueFullError(queue, limit.maxDepth);
  }

  get(queue: string): number {
    return this.#committed.get(queue) ?? 0;
  }
}
