/**
 * Connection settings shared by the engine's pool and its listener client,
 * the transaction helper, and the classification of errors worth retrying.
 */
import pg from 'pg';
import { DroverError, toError } from '../../core/errors.js';

/** Schema names: unquoted lower-case identifiers, so they go into search_path as they are. */
export const SCHEMA_RE = /^[a-z_][a-z0-9_]{0,62}$/;

export interface ConnectionSettings {
  url: string;
  schema: string;
  /** Shown in pg_stat_activity unless the URL sets application_name. */
  applicationName: string;
  /** Deadlines for every connection (defaults: DEFAULT_TIMEOUTS). */
  timeouts?: Partial<StoreTimeouts>;
}

/**
 * Every store call has a deadline, so a path that goes silent (a black hole:
 * packets dropped, no RST) fails calls instead of hanging them:
 *
 * - `statementMs`: the server cancels a statement running longer
 *   (`statement_timeout`; lock waits count), so a slow query fails cleanly
 *   and its connection stays usable;
 * - `queryMs`: the client gives up on an answer that does not come (pg's
 *   `query_timeout`); the connection is then destroyed, never reused. Longer
 *   than `statementMs`, so the server's cancel speaks first when it can;
 * - `connectMs`: opening a connection, or waiting for a free pooled one;
 * - `keepAliveIdleMs`: TCP keepalive on both ends (the server's
 *   `tcp_keepalives_*` too), so a dead peer's session, and the node lock it
 *   holds, are dropped by the server within seconds rather than hours.
 */
export interface StoreTimeouts {
  statementMs: number;
  queryMs: number;
  connectMs: number;
  keepAliveIdleMs: number;
}

export const DEFAULT_TIMEOUTS: StoreTimeouts = { statementMs: 10_000, queryMs: 12_000, connectMs: 5_000, keepAliveIdleMs: 5_000 };

/**
 * A statement allowed to run long (a migration, waiting for the migration
 * lock): the client waits up to an hour for its answer. Lift the server's
 * limit in the same transaction (`SET LOCAL statement_timeout = 0`).
 */
export function longQuery(text: string, values: unknown[] = []): pg.QueryConfig {
  // pg reads a per-query query_timeout; its type definitions do not declare it.
  return { text, values, query_timeout: 3_600_000 } as pg.QueryConfig;
}

const INT8_OID = 20;

/**
 * bigint columns (ids, millisecond times, counts) as numbers: every value we
 * store stays below 2^53, and the rest of Drover works in numbers.
 */
const int8 = (value: string): number => Number(value);

/** Asked per column of every statement's answer: one parser for all bigint columns, not one made each time. */
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID ? int8 : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

const QUOTE_OR_BACKSLASH = /["\\]/;

/**
 * An array parameter as a PostgreSQL array literal (the statement casts it:
 * `$1::bigint[]`). pg encodes a JS array element by element, each through its
 * generic value conversion and two regular expressions; the hot statements
 * send several arrays per job, so they are encoded here instead: numbers and
 * booleans as they are, text quoted and escaped only where it must be.
 *
 * @example arrayParam([1, 2]) // '{1,2}'; arrayParam(['a"b', null]) // '{"a\\"b",NULL}'
 */
export function arrayParam(values: ReadonlyArray<ArrayElement>): string {
  return arrayParamOf(values, itself);
}

type ArrayElement = string | number | boolean | null | undefined;

const itself = (value: ArrayElement): ArrayElement => value;

/** `arrayParam` of one field of each item, without the array of fields in between (the hot batches pass a function made once). */
export function arrayParamOf<T>(items: readonly T[], pick: (item: T) => ArrayElement): string {
  let literal = '{';
  for (let i = 0; i < items.length; i++) {
    if (i > 0) literal += ',';
    literal += arrayElement(pick(items[i]!));
  }
  return `${literal}}`;
}

/** The fields the hot batches (start marks, settlements) send as arrays, for `arrayParamOf`. */
export const idOf = (call: { id: number }): number => call.id;
export const tokenOf = (call: { token: string }): string => call.token;

/** Most jobs in a batch found by id position (`findsById`): `array_position` walks the array per row, so its cost grows with the square of the batch (~7 µs a row at 1,000 ids, a quarter µs at 64). */
const BY_ID_MAX = 64;

/**
 * Whether a batch may take a statement that finds its rows by one index scan
 * over its ids (`id = ANY($1)`) and reads each row's input at its id's
 * position: only when no id comes twice (the position names one input only
 * then; a job twice in a batch, two calls or its old and new lease, is rare)
 * and the batch is small (`BY_ID_MAX`). Other batches take the statement that
 * joins the unnested input.
 */
export function findsById(batch: ReadonlyArray<{ id: number }>): boolean {
  if (batch.length > BY_ID_MAX) return false;
  const ids = new Set<number>();
  for (const p of batch) {
    if (ids.has(p.id)) return false;
    ids.add(p.id);
  }
  return true;
}

/** One element of an array literal (`arrayParam`): NULL, a number or boolean as it is, text quoted and escaped where it must be. */
export function arrayElement(value: ArrayElement): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value !== 'string') return String(value);
  return QUOTE_OR_BACKSLASH.test(value) ? `"${value.replace(/["\\]/g, '\\$&')}"` : `"${value}"`;
}

export function assertSchemaName(schema: string): void {
  if (!SCHEMA_RE.test(schema)) {
    throw new DroverError(
      'config_invalid',
      `postgres.schema (DROVER_PG_SCHEMA): expected a lower-case identifier (letters a-z, digits, "_", at most 63), got ${JSON.stringify(schema)}`,
    );
  }
}

/**
 * Client settings for every connection the engine opens. `genericPlans`: the
 * session runs its prepared statements on generic plans, never re-planning
 * them (see \`PostgresEngine\`'s hot pools). `asyncCommit`: its commits do not
 * wait for the WAL flush — only for work whose loss in a server crash is
 * harmless (see the lease pool).
 */
export function clientConfig(settings: ConnectionSettings, options: { genericPlans?: boolean; asyncCommit?: boolean } = {}): pg.ClientConfig {
  const t = { ...DEFAULT_TIMEOUTS, ...settings.timeouts };
  const keepAliveS = Math.max(1, Math.round(t.keepAliveIdleMs / 1000));
  return {
    connectionString: settings.url,
    fallback_application_name: settings.applicationName.slice(0, 63),
    // Startup options cost no round trip. search_path isolates the schema;
    // the idle-in-transaction timeout is a backstop: a node frozen (SIGSTOP,
    // swapped out) inside a transaction would otherwise hold its row locks and
    // stall every other node's completions.
    options: [
      `-c search_path=${settings.schema}`,
      '-c idle_in_transaction_session_timeout=10000',
      `-c statement_timeout=${t.statementMs}`,
      // The server's side of keepalive: a session whose client vanished
      // (frozen VM, cut path) ends after about idle + 3 probes, releasing its
      // locks (the node-id lock above all). Ignored on Unix sockets.
      `-c tcp_keepalives_idle=${keepAliveS}`,
      `-c tcp_keepalives_interval=${keepAliveS}`,
      '-c tcp_keepalives_count=3',
      // JIT compiles a plan whose estimated cost is high (a disabled seq scan
      // is costed at 1e10) for 100+ ms on every execution; short OLTP
      // statements never win that back.
      '-c jit=off',
      // A generic plan is made once, with the table's size at that moment: a
      // node that starts on an empty queue would keep a sequential-scan plan
      // as the table grows to millions of rows. Every hot statement is written
      // to reach rows through an index, so these sessions forbid the
      // alternative (it stays possible where nothing else is, e.g. \`nodes\`).
      ...(options.genericPlans ? ['-c plan_cache_mode=force_generic_plan', '-c enable_seqscan=off'] : []),
      ...(options.asyncCommit ? ['-c synchronous_commit=off'] : []),
    ].join(' '),
    types,
    keepAlive: true,
    keepAliveInitialDelayMillis: t.keepAliveIdleMs,
    connectionTimeoutMillis: t.connectMs,
    query_timeout: t.queryMs,
  };
}

const TRANSIENT_SQLSTATES = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '53300', // too_many_connections
  '57P01', // admin_shutdown (pg_terminate_backend, server stop)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, shutting down)
  '57014', // query_canceled: statement_timeout (a store too slow to answer in time)
  '55P03', // lock_not_available: lock_timeout
]);

const CONNECTION_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTCONN', 'ENETUNREACH']);

/**
 * Errors after which the same operation may well succeed: the connection was
 * lost or refused, the server is restarting, or a lock conflict was resolved
 * by aborting us. Not constraint violations or bugs.
 */
export function isTransient(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown } | null;
  if (!e || typeof e !== 'object') return false;
  if (typeof e.code === 'string') {
    if (TRANSIENT_SQLSTATES.has(e.code) || e.code.startsWith('08') || CONNECTION_ERRNOS.has(e.code)) return true;
  }
  const message = typeof e.message === 'string' ? e.message : '';
  return /Connection terminated|connection error|not queryable|timeout exceeded when trying to connect|Connection ended|Query read timeout/i.test(message);
}

/** The client gave up waiting for an answer: the connection's state is unknown, so it must not be reused. */
export function isDeadline(error: unknown): boolean {
  const message = (error as { message?: unknown } | null)?.message;
  return typeof message === 'string' && /Query read timeout/.test(message);
}

/** A deadlock or serialization failure: the transaction was rolled back and can simply run again. */
export function isConflict(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '40P01' || code === '40001';
}

/** The engine's checked query on its general pool (open, errors as store errors): rows only. */
export type Query = <R extends pg.QueryResultRow>(text: string, values: unknown[]) => Promise<R[]>;

/** Wrap a driver error as `store_unavailable` (503) when it is transient, so clients retry. */
export function storeError(error: unknown, what: string): Error {
  if (error instanceof DroverError) return error;
  if (isTransient(error)) {
    return new DroverError('store_unavailable', `PostgreSQL is unavailable (${what}): ${toError(error).message}`, {
      cause: error,
      retryAfterSeconds: 1,
    });
  }
  return toError(error);
}

/**
 * Run `work` in one transaction on a pooled client; ROLLBACK on any error.
 * A client whose connection broke is destroyed rather than returned to the pool.
 *
 * @example
 * const id = await inTransaction(pool, async (client) => (await client.query('SELECT 1 AS one')).rows[0].one);
 */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    // After a missed deadline the path is likely dead: a ROLLBACK would wait
    // out a second deadline. Destroying the connection rolls back anyway.
    if (isDeadline(error)) {
      broken = toError(error);
      throw error;
    }
    try {
      await client.query('ROLLBACK');
    } catch (rollbackError) {
      broken = toError(rollbackError);
    }
    throw error;
  } finally {
    client.release(broken);
  }
}

/** Run a transaction again (up to `times`) when PostgreSQL aborted it for a deadlock or serialization conflict. */
export async function retryConflicts<T>(run: () => Promise<T>, times = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      if (!isConflict(error) || attempt >= times) throw error;
    }
  }
}

/** Wait `ms`; `unref` lets the process exit meanwhile (for loops that give up when their owner closes). */
export const delay = (ms: number, options: { unref?: boolean } = {}): Promise<void> =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    if (options.unref) timer.unref();
  });
