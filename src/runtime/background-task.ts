/**
 * One small lifecycle for periodic background work (reaper, pruner, fallback
 * poll): a fixed interval, no overlap between runs, counted failures, and a
 * stop that waits for the run in progress. Timers are unref'd so they never
 * keep a process alive on their own.
 */
import { toError } from '../core/errors.js';

export interface BackgroundTaskOptions {
  name: string;
  intervalMs: number;
  run: () => Promise<void>;
  onError: (error: Error) => void;
}

export class BackgroundTask {
  readonly name: string;
  failures = 0;
  runs = 0;
  #timer: NodeJS.Timeout | null = null;
  #inFlight: Promise<void> | null = null;
  #stopped = true;

  constructor(private readonly options: BackgroundTaskOptions) {
    this.name = options.name;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#schedule();
  }

  /** Run now (and reset the interval), unless a run is already in progress. */
  trigger(): Promise<void> {
    if (this.#inFlight) return this.#inFlight;
    if (this.#timer) clearTimeout(this.#timer);
    this.#inFlight = this.options
      .run()
      .then(() => void this.runs++)
      .catch((error: unknown) => {
        this.failures++;
        this.options.onError(toError(error));
      })
      .finally(() => {
        this.#inFlight = null;
        if (!this.#stopped) this.#schedule();
      });
    return this.#inFlight;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#inFlight;
  }

  #schedule(): void {
    this.#timer = setTimeout(() => void this.trigger(), this.options.intervalMs);
    this.#timer.unref();
  }
}
