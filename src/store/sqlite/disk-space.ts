/**
 * Disk-full watch for the SQLite store: notes writes that failed with
 * SQLITE_FULL after each group commit, and while the disk is full keeps
 * trying a small write until one commits, so readiness and writes come back
 * by themselves once space is freed, whether or not anything else writes.
 */
import type Database from 'better-sqlite3';
import { isDiskFull } from './errors.js';

/** While out of disk space, try a small write this often to notice freed space. */
const FULL_PROBE_MS = 2_000;

export interface DiskSpaceOptions {
  clock: () => number;
  /** A small real write (one meta row), submitted like any other write. */
  probe: () => Promise<void>;
  /** True once the store is closing: no new probe timer is started. */
  closing: () => boolean;
}

export class DiskSpace {
  readonly #totalChanges: Database.Statement<[], { n: number }>;
  readonly #options: DiskSpaceOptions;
  /** Out of disk space: the last write that hit SQLITE_FULL, until a write commits again. */
  #full: { since: number; error: unknown; changes: number } | null = null;
  #fullErrors = 0;
  #fullProbe: NodeJS.Timeout | null = null;

  constructor(db: Database.Database, options: DiskSpaceOptions) {
    this.#totalChanges = db.prepare('SELECT total_changes() AS n');
    this.#options = options;
  }

  /** The last SQLITE_FULL while the disk is still full, else null. */
  get full(): { since: number; error: unknown } | null {
    return this.#full;
  }

  /** Writes refused for lack of space since the store opened. */
  get fullErrors(): number {
    return this.#fullErrors;
  }

  /** Disk-full bookkeeping after each group commit (group-commit.ts `settled`). */
  note(errors: readonly unknown[], committed: boolean): void {
    const full = errors.filter(isDiskFull);
    if (full.length > 0) {
      this.#fullErrors += full.length;
      this.#full = { since: this.#full?.since ?? this.#options.clock(), error: full[0], changes: this.#totalChanges.get()!.n };
      // Recover by itself: keep trying a small write until one commits, whether or not anything else writes.
      if (!this.#fullProbe && !this.#options.closing()) {
        this.#fullProbe = setInterval(() => void this.probe().catch(() => undefined), FULL_PROBE_MS);
        this.#fullProbe.unref();
      }
    } else if (committed && this.#full && this.#totalChanges.get()!.n !== this.#full.changes) {
      // A batch that changed rows committed: there is room to write again (one that wrote nothing proves nothing).
      this.#full = null;
      this.stop();
    }
  }

  probe(): Promise<void> {
    return this.#options.probe();
  }

  stop(): void {
    if (this.#fullProbe) clearInterval(this.#fullProbe);
    this.#fullProbe = null;
  }
}
