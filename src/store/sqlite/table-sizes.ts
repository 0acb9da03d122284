/**
 * Bytes per table of a SQLite store, indexes included (what PostgreSQL's
 * `pg_total_relation_size` reports), from the `dbstat` virtual table.
 * `dbstat` reads every page of the file, so it runs in a worker thread on a
 * read-only connection of its own: the node's event loop and its write
 * connection never wait for it (WAL lets the reader run beside the writer).
 * The answer is reused for `maxAgeMs` because the read costs a pass over the
 * whole file.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** One row per table: its b-tree and its indexes' b-trees, summed (aggregate mode: one dbstat row per b-tree). */
const TABLE_SIZES = `
  SELECT s.tbl_name AS table_name, sum(d.pgsize) AS bytes
  FROM dbstat('main', 1) d JOIN sqlite_schema s ON s.name = d.name
  WHERE s.tbl_name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
  GROUP BY s.tbl_name ORDER BY s.tbl_name`;

/** CommonJS, run with `eval`: it loads better-sqlite3 from the absolute path the parent resolved. */
const WORKER = `
const { workerData, parentPort } = require('node:worker_threads');
const Database = require(workerData.module);
let db;
try {
  db = new Database(workerData.path, { readonly: true, fileMustExist: true });
  parentPort.postMessage({ rows: db.prepare(workerData.sql).all() });
} catch (error) {
  parentPort.postMessage({ error: String((error && error.message) || error) });
} finally {
  if (db) db.close();
}`;

export type TableSize = { table: string; bytes: number };

export class SqliteTableSizes {
  #last: { at: number; sizes: Promise<TableSize[]> } | null = null;
  readonly #running = new Set<Worker>();

  constructor(private readonly options: { path: string; clock: () => number; maxAgeMs?: number }) {}

  /**
   * @example
   * const sizes = await new SqliteTableSizes({ path: 'data/drover.db', clock: Date.now }).read();
   * // [{ table: 'jobs', bytes: 1_089_536 }, …]
   */
  read(): Promise<TableSize[]> {
    const now = this.options.clock();
    if (this.#last && now - this.#last.at < (this.options.maxAgeMs ?? 300_000)) return this.#last.sizes;
    const sizes = readInWorker(this.options.path, this.#running);
    this.#last = { at: now, sizes };
    // A failed read is not cached: the next scrape tries again.
    sizes.catch(() => {
      if (this.#last?.sizes === sizes) this.#last = null;
    });
    return sizes;
  }

  /** Stop a read in flight (the store is closing). */
  async close(): Promise<void> {
    await Promise.all([...this.#running].map((worker) => worker.terminate()));
  }
}

function readInWorker(path: string, running: Set<Worker>): Promise<TableSize[]> {
  if (path === '' || path === ':memory:') return Promise.resolve([]);
  const module = createRequire(import.meta.url).resolve('better-sqlite3');
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER, { eval: true, workerData: { module, path, sql: TABLE_SIZES } });
    worker.unref();
    running.add(worker);
    worker.once('message', (message: { rows?: Array<{ table_name: string; bytes: number }>; error?: string }) => {
      if (message.rows) resolve(message.rows.map((r) => ({ table: r.table_name, bytes: Number(r.bytes) })));
      else reject(new Error(`reading SQLite table sizes (dbstat) failed: ${message.error}`));
    });
    worker.once('error', reject);
    worker.once('exit', (code) => {
      running.delete(worker);
      reject(new Error(`the table-size worker exited (code ${code}) before answering`));
    });
  });
}
