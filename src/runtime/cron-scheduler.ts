/**
 * Enqueues one job per cron tick for handlers that declare `cron`. Each tick's
 * job carries the idempotency key `cron:<expression>:<tick time>`, so a tick is
 * enqueued once even across restarts or, with a shared store, across nodes.
 * Ticks missed while no node was running are not back-filled.
 */
import { compileCron } from '../core/cron.js';
import type { ResolvedHandler } from '../core/config.js';
import { toError } from '../core/errors.js';

const MAX_TIMER_MS = 2 ** 31 - 1;

export interface CronTick {
  handler: ResolvedHandler;
  expression: string;
  tickAt: number;
}

export class CronScheduler {
  readonly #timers = new Set<NodeJS.Timeout>();
  #stopped = true;

  constructor(
    private readonly handlers: Iterable<ResolvedHandler>,
    private readonly clock: () => number,
    private readonly enqueueTick: (tick: CronTick) => Promise<void>,
    private readonly onError: (error: Error) => void,
  ) {}

  start(): void {
    this.#stopped = false;
    for (const handler of this.handlers) {
      for (const expression of handler.cron) this.#scheduleNext(handler, expression, this.clock());
    }
  }

  stop(): void {
    this.#stopped = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }

  #scheduleNext(handler: ResolvedHandler, expression: string, after: number): void {
    if (this.#stopped) return;
    const tickAt = compileCron(expression, handler.cronTimezone).next(after);
    const wait = tickAt - this.clock();
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (this.clock() < tickAt) {
        // Long waits are split (setTimeout caps at ~24.8 days) and timers may fire early.
        this.#scheduleNext(handler, expression, after);
        return;
      }
      this.enqueueTick({ handler, expression, tickAt })
        .catch((error: unknown) => this.onError(toError(error)))
        .finally(() => this.#scheduleNext(handler, expression, tickAt));
    }, Math.min(Math.max(0, wait), MAX_TIMER_MS));
    timer.unref();
    this.#timers.add(timer);
  }
}
