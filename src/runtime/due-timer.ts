/**
 * Promotes scheduled jobs (delayed, or backing off before a retry) to queued
 * when they come due, and wakes suspended jobs whose sleep ended or whose
 * wait timed out. One timer armed for the earliest known due time, not a
 * poll: whoever schedules a job tells us its runAt, and each staging pass
 * reports the next one.
 */
import { toError } from '../core/errors.js';
import type { WaitRow } from '../core/durable.js';
import type { JobStore } from '../store/engine.js';

/** setTimeout's ceiling; longer delays are re-armed in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class DueTimer {
  #timer: NodeJS.Timeout | null = null;
  #armedFor = Number.POSITIVE_INFINITY;
  #stopped = true;
  #staging: Promise<void> | null = null;
  /** The pass queued behind the one out, if any. */
  #followUp: Promise<void> | null = null;

  constructor(
    private readonly store: JobStore,
    private readonly clock: () => number,
    private readonly onError: (error: Error) => void,
    /** Suspended jobs a pass queued again (sleep over, wait timed out): announce them and start them now. */
    private readonly onWoken: (woken: WaitRow[]) => void = () => {},
  ) {}

  start(): void {
    this.#stopped = false;
    void this.stageNow();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#armedFor = Number.POSITIVE_INFINITY;
  }

  /** A job became scheduled for `runAt`: make sure we wake by then. */
  noteDue(runAt: number): void {
    if (this.#stopped || runAt >= this.#armedFor) return;
    this.#arm(runAt);
  }

  /**
   * Stage everything due now and re-arm for the next due time. A call while a
   * pass is out gets a fresh pass after it, shared by every such call: the
   * pass out may have read the store before the job that prompted this call
   * was scheduled, and its answer (no next due time) would leave that job
   * scheduled until something else staged again (on SQLite nothing does).
   */
  stageNow(): Promise<void> {
    if (!this.#staging) return this.#pass();
    this.#followUp ??= this.#staging.then(() => {
      this.#followUp = null;
      return this.#pass();
    });
    return this.#followUp;
  }

  #pass(): Promise<void> {
    this.#staging = this.store
      .stageDue()
      .then((result) => {
        if (result.woken && result.woken.length > 0) this.onWoken(result.woken);
        if (result.nextDueAt !== null) this.#arm(result.nextDueAt);
      })
      .catch((error: unknown) => {
        this.onError(toError(error));
        this.#arm(this.clock() + 1000);
      })
      .finally(() => {
        this.#staging = null;
      });
    return this.#staging;
  }

  /** Arm for `at` unless already armed earlier (an early wake is harmless; a late one is not). */
  #arm(at: number): void {
    if (this.#stopped || at >= this.#armedFor) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#armedFor = at;
    const delay = Math.min(Math.max(0, at - this.clock()), MAX_TIMER_MS);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#armedFor = Number.POSITIVE_INFINITY;
      void this.stageNow();
    }, delay);
    this.#timer.unref();
  }
}
