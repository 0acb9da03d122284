/**
 * Batched `start` marks: every job whose handler is about to run on this node
 * records it (`started_seq = lease_seq`, migration 0004) before the handler
 * runs, so a reclaim can tell a crashed attempt from a job that was only
 * leased ahead. The runtime waits for the mark, so it sits on the hot path:
 * calls made while one batch is in flight join the next (one-in-flight.ts),
 * one statement per batch, on the lease pool (asynchronous commit, no wait
 * for the WAL flush): the mark is visible to every node once committed, and
 * only a server crash can lose it, which leaves one crash uncounted, never a
 * job lost or run twice.
 */
import type pg from 'pg';
import { DroverError } from '../../core/errors.js';
import type { FenceResult } from '../engine.js';
import { storeError } from './connection.js';
import { OneInFlight } from './one-in-flight.js';
import { parseJobId, toJobRow, type RawJob } from './rows.js';

/** $1 ids, $2 tokens. Fenced like a settlement (see settle-batch.ts for the plan note on the state test). */
const START = `
  WITH input AS (SELECT * FROM unnest($1::bigint[], $2::text[]) AS i(id, token))
  UPDATE jobs j SET started_seq = j.lease_seq
  FROM input i
  WHERE j.id = i.id AND j.lease_token = i.token AND starts_with(j.state, 'running')
  RETURNING j.*, i.token AS fenced_token`;

/** Most marks in one statement. */
const MAX_BATCH = 1000;

interface Pending {
  id: number;
  token: string;
  resolve(result: FenceResult): void;
  reject(error: unknown): void;
}

export class StartBatch {
  readonly #calls = new OneInFlight<Pending>((pending) => Math.min(pending.length, MAX_BATCH), (batch) => this.#run(batch));
  #closed = false;

  constructor(private readonly pool: pg.Pool) {}

  submit(jobId: string, token: string): Promise<FenceResult> {
    if (this.#closed) return Promise.reject(new DroverError('store_unavailable', 'the store is closed'));
    const id = parseJobId(jobId);
    if (id === null) return Promise.resolve({ ok: false, reason: 'not_found' });
    return new Promise<FenceResult>((resolve, reject) => this.#calls.push({ id, token, resolve, reject }));
  }

  /** Refuse new calls and wait for the queued ones. */
  close(): Promise<void> {
    this.#closed = true;
    return this.#calls.drain();
  }

  async #run(batch: Pending[]): Promise<void> {
    let rows: Array<RawJob & { fenced_token: string }>;
    try {
      ({ rows } = await this.pool.query<RawJob & { fenced_token: string }>({
        name: 'drover_start',
        text: START,
        values: [batch.map((p) => p.id), batch.map((p) => p.token)],
      }));
    } catch (error) {
      // Not started: the caller does not run the handler, and the lease comes back unspent.
      const wrapped = storeError(error, 'marking jobs started');
      for (const p of batch) p.reject(wrapped);
      return;
    }
    const started = new Map(rows.map((raw) => [`${raw.id}\u0000${raw.fenced_token}`, raw]));
    const unmatched: Pending[] = [];
    for (const p of batch) {
      const raw = started.get(`${p.id}\u0000${p.token}`);
      if (raw) p.resolve({ ok: true, job: toJobRow(raw) });
      else unmatched.push(p);
    }
    if (unmatched.length === 0) return;
    // Rare (a lease reaped or cancelled meanwhile): tell "gone" from "stale".
    let known: Set<number> | null = null;
    try {
      const { rows: exists } = await this.pool.query<{ id: number }>('SELECT id FROM jobs WHERE id = ANY($1::bigint[])', [unmatched.map((p) => p.id)]);
      known = new Set(exists.map((r) => Number(r.id)));
    } catch {
      known = null;
    }
    for (const p of unmatched) p.resolve({ ok: false, reason: known === null || known.has(p.id) ? 'stale_lease' : 'not_found' });
  }
}
