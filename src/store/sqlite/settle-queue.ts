/**
 * Lease-fenced transitions (complete, fail, release) made in one event-loop
 * turn run as ONE group-commit op instead of one op each. Every op pays a
 * SAVEPOINT/RELEASE pair (measured at ~6 µs, as much as the update itself)
 * and a promise, and a busy node settles thousands of jobs a second.
 *
 * If that shared op fails (a bug, a disk error) its savepoint undoes all of
 * it, and each transition is then submitted again as its own op, so one bad
 * transition cannot fail the others.
 *
 * A transition that fails because the store cannot write for now (disk full,
 * a write lock held by another connection: `isTransient`) is tried again with
 * backoff for up to `retryForMs`, as the PostgreSQL engine does
 * (settle-batch.ts): dropping it would leave the job `running` until its
 * lease expired, then run it again and repeat its side effects. The retry is
 * fenced like the first try, so an outcome lands at most once.
 */
import type { FenceResult, MatchResult } from '../engine.js';
import type { SubmitMode } from './group-commit.js';

/** A fenced transition's answer: with the job's row, or (`row: false`) without. */
type Settled = FenceResult | MatchResult;
type Settle<E> = (own: E) => Settled;
type Submit<E> = <T>(op: (own: E) => T, mode?: SubmitMode) => Promise<T>;

interface Pending<E> {
  run: Settle<E>;
  /** May make work leasable (a retry, a release): group-commit.ts `SubmitMode`. */
  feeds: boolean;
  resolve(result: Settled): void;
  reject(error: unknown): void;
}

export interface SettleRetry {
  /** The store could not write for now; the same write may succeed later. */
  isTransient(error: unknown): boolean;
  /** Give up after this long (default 30 s, as PostgreSQL's settle batches). */
  retryForMs?: number;
}

export class SettleQueue<E> {
  #pending: Array<Pending<E>> = [];
  readonly #retrying = new Set<Promise<void>>();
  #closing = false;
  /** Cuts retry waits short when the store closes: each retry gets one last try. */
  #wakeRetries: Array<() => void> = [];
  readonly #retryForMs: number;

  constructor(
    private readonly submit: Submit<E>,
    private readonly retry: SettleRetry = { isTransient: () => false },
  ) {
    this.#retryForMs = retry.retryForMs ?? 30_000;
  }

  /** `feeds`: false for a transition that only ends work (a completion). */
  add<R extends Settled>(run: (own: E) => R, feeds = true): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#pending.push({ run, feeds, resolve: resolve as (result: Settled) => void, reject });
      if (this.#pending.length === 1) this.#submitShared();
    });
  }

  /** Transitions still being retried. */
  get retrying(): number {
    return this.#retrying.size;
  }

  /** Stop waiting between retries (one last try each) and resolve when none is left. */
  async close(): Promise<void> {
    this.#closing = true;
    for (const wake of this.#wakeRetries.splice(0)) wake();
    while (this.#retrying.size > 0) await Promise.all(this.#retrying);
  }

  #submitShared(): void {
    // Taken when the op runs, so every transition queued before the batch flushes rides in it.
    let taken: Array<Pending<E>> = [];
    // Read by the group commit once the op has run: only then is it known what rode in it.
    const mode: SubmitMode = { feeds: true, atCommit: false };
    this.submit((own) => {
      taken = this.#pending.splice(0);
      mode.feeds = taken.some((item) => item.feeds);
      return taken.map((item) => item.run(own));
    }, mode).then(
      (results) => taken.forEach((item, i) => item.resolve(results[i]!)),
      () => {
        // Not run at all (store closing) or rolled back: one op each, each with its own outcome.
        const items = taken.length > 0 ? taken : this.#pending.splice(0);
        for (const item of items) this.submit(item.run).then(item.resolve, (error: unknown) => this.#retryLater(item, error));
      },
    );
  }

  #retryLater(item: Pending<E>, error: unknown): void {
    if (!this.retry.isTransient(error) || this.#closing) {
      item.reject(error);
      return;
    }
    const retrying = this.#retryUntil(item, Date.now() + this.#retryForMs).finally(() => this.#retrying.delete(retrying));
    this.#retrying.add(retrying);
  }

  async #retryUntil(item: Pending<E>, deadline: number): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      await this.#pause(Math.min(2_000, 50 * 2 ** attempt, Math.max(0, deadline - Date.now())));
      try {
        item.resolve(await this.submit(item.run));
        return;
      } catch (error) {
        if (!this.retry.isTransient(error) || this.#closing || Date.now() >= deadline) {
          item.reject(error);
          return;
        }
      }
    }
  }

  #pause(ms: number): Promise<void> {
    if (this.#closing) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#wakeRetries = this.#wakeRetries.filter((w) => w !== wake);
        resolve();
      }, ms);
      this.#wakeRetries.push(wake);
    });
  }
}
