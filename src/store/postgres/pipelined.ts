/**
 * One long-lived connection in pipeline mode (pg's `pipeline: true`): a
 * statement is written as soon as it is asked for, without waiting for the
 * answers of those before it, and one backend executes them in order.
 *
 * Why for the hot path's small statements (start marks): on a machine whose
 * cores the worker shares with PostgreSQL, a statement's cost is mostly its
 * round trip: each socket write wakes a backend, and a woken backend takes
 * the core. Spread over a pool, the marks in flight wake as many backends;
 * here they reach one that is often awake already.
 *
 * The connection comes from `pool` (checked out for good, so the pool's error
 * reporting and its limits cover it) and is given back as broken when a
 * statement fails for a connection reason: the next statement checks out a
 * fresh one. A statement error (a constraint, a bad value) leaves it in use:
 * each statement is its own Sync, so one failing does not touch the others.
 */
import type pg from 'pg';
import { isTransient } from './connection.js';

export class Pipelined {
  #client: pg.PoolClient | null = null;
  #connecting: Promise<pg.PoolClient> | null = null;
  /** Statements written and not yet answered. */
  #inFlight = 0;

  constructor(private readonly pool: pg.Pool) {}

  /**
   * The held connection as an operator would count it: `busy` only while a
   * statement is out. The pool sees it checked out for good, which would show
   * an idle node with a connection always in use.
   */
  get connection(): 'none' | 'idle' | 'busy' {
    if (this.#client === null) return 'none';
    return this.#inFlight > 0 ? 'busy' : 'idle';
  }

  async query<R extends pg.QueryResultRow>(config: pg.QueryConfig): Promise<pg.QueryResult<R>> {
    this.#inFlight++;
    try {
      const client = this.#client ?? (await this.#connect());
      try {
        return await client.query<R>(config);
      } catch (error) {
        if (isTransient(error)) this.#discard(client, error);
        throw error;
      }
    } finally {
      this.#inFlight--;
    }
  }

  /** Give the connection back (close): after the statements already written. */
  async close(): Promise<void> {
    const client = this.#client ?? (await this.#connecting?.catch(() => null)) ?? null;
    if (client === null || this.#client !== client) return;
    this.#client = null;
    client.release();
  }

  #connect(): Promise<pg.PoolClient> {
    this.#connecting ??= this.pool.connect().then(
      (client) => {
        this.#connecting = null;
        this.#client = client;
        // A connection that dies while idle is dropped at once, so the next statement gets a fresh one
        // instead of failing on it (the error itself is counted by the pool's watcher: connection-errors.ts).
        const drop = (error?: Error) => this.#discard(client, error ?? new Error('Connection ended'));
        client.once('error', drop);
        client.once('end', drop);
        return client;
      },
      (error: unknown) => {
        this.#connecting = null;
        throw error;
      },
    );
    return this.#connecting;
  }

  #discard(client: pg.PoolClient, error: unknown): void {
    if (this.#client !== client) return;
    this.#client = null;
    client.release(error instanceof Error ? error : new Error(String(error)));
  }
}
