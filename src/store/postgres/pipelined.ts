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
 *
 * `query` can also say when a statement is on its way (`onWritten`): its
 * bytes went to the kernel in the call itself, on a plain socket, while the
 * connection is in good standing. Start marks use it to let handlers begin
 * before the answer (start-batch.ts says what that guarantees and why the
 * conditions are these).
 */
import type { Socket } from 'node:net';
import pg from 'pg';
import { isTransient } from './connection.js';

/**
 * Most statements written before one and still unanswered for it to count as
 * on its way. A node killed with an answer unread in its socket resets the
 * connection (Linux sends RST, not FIN); the backend's next write then fails
 * and it exits before the statements after that write. With at most one
 * ahead, that write is the answer of the one ahead, made after it committed,
 * and the next write after this statement's commit: this one still commits.
 */
export const WRITTEN_AHEAD_MAX = 1;

/** A connection whose last answer is older than this is not in good standing (idle, or an answer overdue). */
export const ANSWERED_WITHIN_MS = 1_000;

/** What a statement here may carry: pg's other options (row mode, types, a timeout of its own) are not taken. */
export interface PlainStatement {
  name?: string;
  text: string;
  values: unknown[];
}

/**
 * `client.query(statement)` without pg's copy of it. Given a config object,
 * pg copies it through its property descriptors for every statement
 * (`cloneQueryConfig`: ~2 µs here, and the copy is read in dictionary mode);
 * a `Query` made from the text and values is not copied, and answers through
 * its callback without pg's promise and its `catch` (docs/benchmarks.md,
 * tenth pass). The connection's `query_timeout` applies as before.
 */
function submit<R extends pg.QueryResultRow>(client: pg.PoolClient, statement: PlainStatement): Promise<pg.QueryResult<R>> {
  return new Promise((resolve, reject) => {
    const query = new pg.Query<R>(statement.text, statement.values, (error, result) => {
      if (error) reject(error);
      else resolve(result as unknown as pg.QueryResult<R>);
    });
    // Read at submit: named, the statement is parsed once per connection and then only bound.
    if (statement.name !== undefined) (query as { name?: string }).name = statement.name;
    client.query(query);
  });
}

/** pg's client keeps its socket here; not in its typings. */
interface WithSocket {
  connection?: { stream?: Socket & { encrypted?: boolean } };
}

export class Pipelined {
  #client: pg.PoolClient | null = null;
  #connecting: Promise<pg.PoolClient> | null = null;
  /** Statements written and not yet answered. */
  #inFlight = 0;
  /** When the held connection last answered (monotonic ms); -Infinity: not since it was connected. */
  #answeredAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly pool: pg.Pool,
    /** A monotonic clock (ms). */
    private readonly monotonic: () => number = performance.now.bind(performance),
  ) {}

  /**
   * The held connection as an operator would count it: `busy` only while a
   * statement is out. The pool sees it checked out for good, which would show
   * an idle node with a connection always in use.
   */
  get connection(): 'none' | 'idle' | 'busy' {
    if (this.#client === null) return 'none';
    return this.#inFlight > 0 ? 'busy' : 'idle';
  }

  /**
   * `onWritten`: called at once, before the answer, when the statement's bytes
   * went to the kernel in this call, on a plain (not TLS) socket, with at most
   * `WRITTEN_AHEAD_MAX` statements ahead of it unanswered, and the connection
   * answered within `ANSWERED_WITHIN_MS` with no failure since. Otherwise
   * never: the caller waits for the answer.
   */
  async query<R extends pg.QueryResultRow>(config: PlainStatement, onWritten?: () => void): Promise<pg.QueryResult<R>> {
    const ahead = this.#inFlight++;
    try {
      const client = this.#client ?? (await this.#connect());
      try {
        const socket = onWritten !== undefined && this.#goodStanding(ahead) ? (client as unknown as WithSocket).connection?.stream : undefined;
        const before = socket?.bytesWritten ?? 0;
        const answer = submit<R>(client, config);
        // Bytes dispatched and none left in Node's or libuv's queue: the write returned having handed them all over.
        if (socket !== undefined && socket.encrypted !== true && socket.bytesWritten > before && socket.writableLength === 0) onWritten!();
        const result = await answer;
        if (this.#client === client) this.#answeredAt = this.monotonic();
        return result;
      } catch (error) {
        // Any failure (a timeout too) ends good standing until a statement succeeds again.
        this.#answeredAt = Number.NEGATIVE_INFINITY;
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

  #goodStanding(ahead: number): boolean {
    return ahead <= WRITTEN_AHEAD_MAX && this.monotonic() - this.#answeredAt < ANSWERED_WITHIN_MS;
  }

  #discard(client: pg.PoolClient, error: unknown): void {
    if (this.#client !== client) return;
    this.#client = null;
    this.#answeredAt = Number.NEGATIVE_INFINITY;
    client.release(error instanceof Error ? error : new Error(String(error)));
  }
}
