/**
 * Who hears about new work: this process's listeners right after a commit,
 * and the other nodes through LISTEN/NOTIFY on the schema's channel (the
 * session lives in notifier.ts). Listeners get the queues that got due work
 * (an empty list means "some queues": a reconnect, a notice too long to list
 * them) and the handlers of its jobs (undefined: any handler); see
 * roles/connection.ts `WorkListener`.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { WorkListener } from '../engine.js';
import type { Woken } from '../woken.js';
import { Notifier, notifyPayload, type NotifierOptions } from './notifier.js';

export class Wakeups {
  /** The LISTEN session (node locks use it too: it lives as long as the engine). */
  readonly notifier: Notifier;
  /** Where statements that notify by themselves (intake) send their notice. */
  readonly target: { channel: string; instanceId: string };
  readonly #listeners = new Set<WorkListener>();

  constructor(
    private readonly pool: pg.Pool,
    config: pg.ClientConfig,
    schema: string,
    session: Pick<NotifierOptions, 'onLost' | 'checkEveryMs' | 'onLag'> = {},
  ) {
    this.target = { channel: `drover_work_${schema}`.slice(0, 63), instanceId: randomUUID() };
    this.notifier = new Notifier({ config, ...this.target, ...session, onWork: (queues, handlers) => this.#broadcast(queues, handlers) });
  }

  listen(listener: WorkListener): () => void {
    this.#listeners.add(listener);
    // Connect the LISTEN session on first use; it reconnects by itself after.
    this.notifier.start().catch(() => undefined);
    return () => void this.#listeners.delete(listener);
  }

  /** Tell this process's listeners (the committed statement already notified the other nodes). */
  local(woken: Woken): void {
    if (!woken.empty) this.#broadcast([...woken.queues], woken.handlers);
  }

  /** After a commit that notified nobody: this process now, the other nodes through NOTIFY. */
  async committed(woken: Woken): Promise<void> {
    if (woken.empty) return;
    this.local(woken);
    try {
      await this.pool.query('SELECT pg_notify($1, $2)', [this.target.channel, notifyPayload(this.target.instanceId, woken)]);
    } catch {
      // Committed work is found anyway: by the runtime's fallback poll on other nodes.
    }
  }

  async close(): Promise<void> {
    this.#listeners.clear();
    await this.notifier.close();
  }

  #broadcast(queues: readonly string[], handlers: readonly string[] | undefined): void {
    for (const listener of this.#listeners) {
      try {
        listener(queues, handlers);
      } catch {
        // A listener's bug must not break the write path; the work is found by
        // the next lease or the fallback poll.
      }
    }
  }
}
