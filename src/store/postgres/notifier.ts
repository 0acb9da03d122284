/**
 * Cross-node wakeups with LISTEN/NOTIFY, on one dedicated connection per
 * engine (a pooled connection cannot LISTEN: the pool hands it to others).
 *
 * - Writers call `pg_notify(channel, payload)` in (or right after) the
 *   transaction that made work due; PostgreSQL delivers it on commit. The
 *   payload names the sending engine, so an engine ignores its own
 *   notifications: it already told its local listeners after the commit.
 * - The connection reconnects with capped exponential backoff. Notifications
 *   sent while it was down are lost, so listeners are called once after every
 *   reconnect, and the runtime polls every few seconds as a fallback.
 * - The same session holds the node-id lock (`pg_try_advisory_lock`), which
 *   PostgreSQL releases the moment the process dies and its connection closes.
 * - An idle session hears nothing when its path goes silent (no RST): every
 *   `checkEveryMs` it runs `SELECT 1` under the query deadline, and a missed
 *   answer counts as a lost connection. A reconnect whose node lock is still
 *   held by the lost session (the server has not noticed it is gone) ends
 *   that session: it is this process's own.
 */
import pg from 'pg';
import { toError } from '../../core/errors.js';
import type { Woken } from '../woken.js';
import { delay } from './connection.js';

/** Notification payloads are capped at 8000 bytes; list queues and handlers up to this much and send "some queues, any handler" beyond. */
const MAX_PAYLOAD_CHARS = 7000;
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5_000;
const CHECK_EVERY_MS = 5_000;

export interface NotifierOptions {
  config: pg.ClientConfig;
  channel: string;
  /** This engine's id, carried in payloads so it can skip its own notifications. */
  instanceId: string;
  /**
   * Work arrived from another engine (`queues` may be empty: "some queues", or
   * a reconnect); `handlers`: those of its due jobs, undefined for any handler.
   */
  onWork: (queues: readonly string[], handlers: readonly string[] | undefined) => void;
  onError?: (error: Error) => void;
  /** The session was lost (reported once per connection; the notifier reconnects by itself). */
  onLost?: (error: Error, client: pg.Client) => void;
  /** How often the idle session proves its path works. Default 5 s. */
  checkEveryMs?: number;
  /** Another engine's notice arrived `seconds` after its sender stamped it (wall clocks: NTP skew between hosts shows here). */
  onLag?: (seconds: number) => void;
}

/**
 * Build the payload `pg_notify` sends for this due work: its queues and the
 * handlers of its jobs (no `handlers` key: any handler). `at` (wall-clock ms,
 * when the notice was built, just before its statement runs) lets the
 * receivers measure the NOTIFY lag (`drover_store_notify_lag_seconds`).
 */
export function notifyPayload(instanceId: string, woken: Woken, at = Date.now()): string {
  const { handlers } = woken;
  const payload = JSON.stringify({ from: instanceId, at, queues: [...woken.queues], ...(handlers ? { handlers } : {}) });
  // Too long for NOTIFY: "some queues, any handler" still wakes every receiver.
  return payload.length > MAX_PAYLOAD_CHARS ? JSON.stringify({ from: instanceId, at, queues: [] }) : payload;
}

interface Payload {
  from: string;
  queues: string[];
  /** Undefined: any handler (the sender could not name them, or predates naming them). */
  handlers: string[] | undefined;
  at: number | null;
}

function parsePayload(payload: string | undefined): Payload | null {
  try {
    const value = JSON.parse(payload ?? '') as { from?: unknown; queues?: unknown; handlers?: unknown; at?: unknown };
    if (typeof value.from !== 'string' || !Array.isArray(value.queues)) return null;
    // Older senders (before the stamp) send no `at`.
    const at = typeof value.at === 'number' && Number.isFinite(value.at) ? value.at : null;
    const handlers = Array.isArray(value.handlers) ? value.handlers.filter((h): h is string => typeof h === 'string') : undefined;
    return { from: value.from, queues: value.queues.filter((q): q is string => typeof q === 'string'), handlers, at };
  } catch {
    return null;
  }
}

export class Notifier {
  #client: pg.Client | null = null;
  #connecting: Promise<pg.Client> | null = null;
  #closed = false;
  #failures = 0;
  /** Node-lock keys this engine holds, re-taken after a reconnect. */
  readonly #locks = new Set<string>();
  /** The backend of the last session: after a silent loss it may still hold the node locks. */
  #lastPid: number | null = null;
  #check: NodeJS.Timeout | null = null;

  constructor(private readonly options: NotifierOptions) {}

  /** Connected right now (for diagnostics). */
  get connected(): boolean {
    return this.#client !== null;
  }

  /** Connect and LISTEN if not yet; resolves once listening (rejects if the first attempt fails). */
  start(): Promise<pg.Client> {
    if (this.#client) return Promise.resolve(this.#client);
    this.#connecting ??= this.#connect().finally(() => {
      this.#connecting = null;
    });
    return this.#connecting;
  }

  /**
   * Take the session-level advisory lock for `key` on this connection.
   * False when another session holds it (another live process).
   */
  async tryLock(key: string): Promise<boolean> {
    const client = await this.start();
    const { rows } = await client.query<{ ok: boolean }>("SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok", [key]);
    const ok = rows[0]?.ok === true;
    if (ok) this.#locks.add(key);
    return ok;
  }

  async unlock(key: string): Promise<void> {
    if (!this.#locks.delete(key) || !this.#client) return;
    await this.#client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [key]).catch(() => undefined);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#check) clearInterval(this.#check);
    await this.#connecting?.catch(() => undefined);
    const client = this.#client;
    this.#client = null;
    // Ending the session releases LISTEN and the node lock.
    if (client) await client.end().catch(() => undefined);
  }

  async #connect(): Promise<pg.Client> {
    const client = new pg.Client(this.options.config);
    client.on('error', (error) => this.#lost(client, error));
    client.on('end', () => this.#lost(client, new Error('listener connection ended')));
    // This engine's own notices begin so (payloads are written with `from` first): skipped without parsing them.
    const ownPrefix = `{"from":${JSON.stringify(this.options.instanceId)},`;
    client.on('notification', (message) => {
      if (message.channel !== this.options.channel || message.payload?.startsWith(ownPrefix)) return;
      const parsed = parsePayload(message.payload);
      if (parsed?.from === this.options.instanceId) return;
      if (parsed?.at != null) this.options.onLag?.(Math.max(0, Date.now() - parsed.at) / 1000);
      this.options.onWork(parsed?.queues ?? [], parsed?.handlers);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${pg.escapeIdentifier(this.options.channel)}`);
      for (const key of this.#locks) {
        if (!(await this.#retake(client, key))) this.options.onError?.(new Error(`after reconnecting, the node lock ${key} is held by another session`));
      }
      this.#lastPid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid ?? null;
    } catch (error) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
      throw error;
    }
    if (this.#closed) {
      await client.end().catch(() => undefined);
      throw new Error('notifier closed');
    }
    this.#client = client;
    this.#watch(client);
    if (this.#failures > 0) {
      // Whatever was notified while we were away is lost: let listeners look.
      this.#failures = 0;
      this.options.onWork([], undefined);
    }
    return client;
  }

  #lost(client: pg.Client, error: Error): void {
    if (this.#client !== client) return; // an attempt that never became current, or already handled
    this.#client = null;
    if (this.#check) clearInterval(this.#check);
    this.#check = null;
    client.removeAllListeners('notification');
    // end() destroys the socket when a query is stuck on it (a missed deadline).
    void client.end().catch(() => undefined);
    if (this.#closed) return;
    this.options.onLost?.(error, client);
    this.options.onError?.(error);
    void this.#reconnect();
  }

  /** Prove the idle session's path every few seconds; a missed deadline (query_timeout) loses it. */
  #watch(client: pg.Client): void {
    if (this.#check) clearInterval(this.#check);
    let inFlight = false;
    this.#check = setInterval(() => {
      if (inFlight || this.#client !== client) return;
      inFlight = true;
      client
        .query('SELECT 1')
        .catch((error: unknown) => this.#lost(client, toError(error)))
        .finally(() => {
          inFlight = false;
        });
    }, this.options.checkEveryMs ?? CHECK_EVERY_MS);
    this.#check.unref();
  }

  /**
   * Take `key` again on a new session. If the session this notifier lost
   * still holds it (a silent loss: the server has not seen the socket die),
   * end that session — it is ours — and try once more.
   */
  async #retake(client: pg.Client, key: string): Promise<boolean> {
    const take = async () =>
      (await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok', [key])).rows[0]?.ok === true;
    if (await take()) return true;
    if (this.#lastPid === null) return false;
    const { rows } = await client.query<{ ended: boolean }>(
      `SELECT pg_terminate_backend(pid) AS ended FROM pg_locks
       WHERE locktype = 'advisory' AND granted AND pid = $1 AND ((classid::bigint << 32) | objid::bigint) = hashtextextended($2, 0)`,
      [this.#lastPid, key],
    );
    if (rows[0]?.ended !== true) return false;
    // The backend ends asynchronously; its locks go with it within moments.
    for (let tries = 0; tries < 20; tries++) {
      if (await take()) return true;
      await delay(100, { unref: true });
    }
    return false;
  }

  async #reconnect(): Promise<void> {
    while (!this.#closed && !this.#client) {
      this.#failures++;
      const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(this.#failures - 1, 10));
      await delay(cap / 2 + Math.random() * (cap / 2), { unref: true });
      if (this.#closed) return;
      try {
        await this.start();
      } catch (error) {
        this.options.onError?.(toError(error));
      }
    }
  }
}
