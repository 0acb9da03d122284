/**
 * Every 'error' a pg client emits is handled here: counted by kind, reported
 * once per client, and the client discarded. Without a listener an 'error'
 * event throws, and the process exits: a connection checked out of a pool
 * (between the statements of a transaction) has no listener of pg-pool's, so
 * a backend killed or a socket reset at that moment used to kill the node.
 *
 * - `idle`: a pooled connection nobody was using died (pg-pool discards it);
 * - `active`: a checked-out connection died (its next statement fails and
 *   its owner releases it as broken, so the pool discards it);
 * - `listen`: the LISTEN/NOTIFY session died (the notifier reconnects).
 */
import type pg from 'pg';

export type ConnectionErrorKind = 'idle' | 'active' | 'listen';

export const CONNECTION_ERROR_KINDS: readonly ConnectionErrorKind[] = ['idle', 'active', 'listen'];

export type ConnectionErrorListener = (kind: ConnectionErrorKind, error: Error) => void;

export class ConnectionErrors {
  readonly #counts: Record<ConnectionErrorKind, number> = { idle: 0, active: 0, listen: 0 };
  /** A client is reported once: a dying socket can emit more than one error. */
  readonly #reported = new WeakSet<object>();

  constructor(private readonly listener: ConnectionErrorListener = () => undefined) {}

  /** Errors so far by kind (for `drover_store_connection_errors_total`). */
  get counts(): Readonly<Record<ConnectionErrorKind, number>> {
    return { ...this.#counts };
  }

  /** Handle the errors of every client `pool` creates, idle or checked out. */
  watch(pool: pg.Pool): void {
    const checkedOut = new WeakSet<pg.PoolClient>();
    pool.on('acquire', (client) => checkedOut.add(client));
    pool.on('release', (_error, client) => checkedOut.delete(client));
    // pg-pool emits this for an idle client's error, and removes the client.
    pool.on('error', (error, client) => this.report('idle', error, client));
    pool.on('connect', (client) => {
      // A listener for the client's whole life: pg-pool's own is detached while it is checked out.
      client.on('error', (error) => {
        if (checkedOut.has(client)) this.report('active', error, client);
      });
    });
  }

  /** Count and report `error` unless `client` was reported already. */
  report(kind: ConnectionErrorKind, error: Error, client: object): void {
    if (this.#reported.has(client)) return;
    this.#reported.add(client);
    this.#counts[kind]++;
    try {
      this.listener(kind, error);
    } catch {
      // A listener's bug must not turn a handled error into an unhandled one.
    }
  }
}
