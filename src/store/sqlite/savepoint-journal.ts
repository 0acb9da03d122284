/**
 * Where a group commit's savepoint journals live while its batch runs.
 *
 * Each write of a batch runs in a savepoint (group-commit.ts), so that one
 * failing write rolls back alone. SQLite journals the pages a savepoint
 * changes as they were before it, and keeps that journal in memory only up to
 * 64 KiB, then in a temp file, one system call per page. A lease or a settle
 * of a few hundred jobs changes more pages than that, so a drain wrote about
 * 4,700 pages a 20,000 jobs to temp files from the event loop (strace).
 * `temp_store = MEMORY` keeps these journals in memory. It is set only while a
 * batch runs: it also keeps a query's sort in memory, and an unindexed
 * GROUP BY over a large `jobs` table (the queue counts) would then hold all
 * of it (29 MiB more for a million rows, measured). The journal only rolls
 * back one write inside an open transaction; crash recovery reads the WAL,
 * so where the journal lives changes nothing on disk.
 */
import type Database from 'better-sqlite3';

/** SQLite's `temp_store` value for MEMORY. */
const MEMORY = 2;

export class SavepointJournal {
  /** The connection's own `temp_store`, restored after each batch; null: MEMORY already, nothing to switch. */
  readonly #level: number | null;

  constructor(private readonly db: Database.Database) {
    const level = Number(db.pragma('temp_store', { simple: true }));
    this.#level = level === MEMORY ? null : level;
  }

  /**
   * Run `batch` (a whole transaction, opened and ended inside it) with its
   * savepoint journals in memory.
   *
   * @example
   * const journal = new SavepointJournal(db);
   * journal.around(() => runBatch.immediate(ops));
   */
  around<T>(batch: () => T): T {
    if (this.#level === null) return batch();
    // Through db.pragma, prepared each time: SQLite applies a `temp_store` setting when the PRAGMA is compiled,
    // so a prepared one kept for reuse would not apply at its first run (measured).
    this.db.pragma('temp_store = MEMORY');
    try {
      return batch();
    } finally {
      this.db.pragma(`temp_store = ${this.#level}`);
    }
  }
}
