/**
 * Batched lease-fenced transitions (complete, fail, release): every call made
 * while the previous batch is in flight joins the next one, and a batch is ONE
 * statement — update the fenced job rows, write their attempt rows, subtract
 * finished jobs from the queue depth counters. Under load a batch carries
 * dozens of jobs per round trip and per commit; when idle it goes out at once
 * (next turn of the event loop).
 *
 * Each row is fenced on (id, lease_token, state = 'running'): a stale holder
 * changes nothing and is told `stale_lease`.
 *
 * A batch that fails for a transient reason (connection lost, server
 * restarting, deadlock) is retried with backoff for up to `retryForMs`, so a
 * database blip does not turn finished jobs into lease expiries and re-runs.
 * The failure may have come after the commit (the answer was lost, or a
 * statement sent into a silent path arrived late and committed after the
 * node gave up on it): the retry is then fenced. So every try of a batch
 * writes the batch's own id into each row it settles (`lease_call`, free
 * once the job leaves `running`: only `RELEASE_BY_CALL` reads it, and only
 * on running rows), and a call the retry finds fenced whose row carries its
 * own mark is answered as settled: that earlier try committed it, once. A
 * lease really lost (reaped, cancelled, released, leased again) never carries
 * the mark, so it is still refused. A failure or release whose job was leased
 * again before the retry read it has lost the mark too, and is answered
 * `stale_lease` (its outcome was recorded; nothing is counted twice).
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { DroverError } from '../../core/errors.js';
import type { FailRequest, FenceResult, MatchResult } from '../engine.js';
import { arrayParam, arrayParamOf, delay, findsById, idOf, isTransient, storeError, tokenOf } from './connection.js';
import { OneInFlight } from './one-in-flight.js';
import { parseJobId, toJobRow, toJson, type RawJob } from './rows.js';

export type Settlement =
  | { kind: 'succeeded'; result: unknown }
  | { kind: 'failed'; request: FailRequest }
  /** `runAt` in the future: scheduled for then (held back), not queued at once. */
  | { kind: 'released'; runAt?: number };

interface Pending {
  id: number;
  token: string;
  settlement: Settlement;
  /** A success's result as JSON text. */
  result: string | null;
  /** The caller wants the job's row back (a batch reads rows back when any of its calls does). */
  row: boolean;
  resolve(result: FenceResult | MatchResult): void;
  reject(error: unknown): void;
}

const MATCHED: MatchResult = Object.freeze({ ok: true });

const resultOf = (p: Pending): string | null => p.result;

/** The mark a try of batch `batch` leaves on the row of its `n`th call (1-based), in `lease_call`. */
export const markOf = (batch: string, n: number): string => `${batch}:${n}`;

/** What the fenced calls' rows are read for: whether the job exists, and whether this batch settled it. */
type FencedRow = Pick<RawJob, 'id' | 'state' | 'queue' | 'concurrency_key'> & { lease_call: string | null };

/**
 * $1 ids, $2 tokens, $3 attempt outcomes, $4 results (json text), $5 errors,
 * $6 retry times (null = dead; for a release, when it runs again, null = now), $7 dead reasons, $8 now,
 * $9 crashed flags (a failed attempt whose worker was killed: counts in `crashes`),
 * $10 the batch's id: each row settled is marked `<id>:<n>` (`markOf`).
 *
 * `full`: each settled job's whole row comes back (the HTTP API answers with
 * it). Otherwise only its place in the input (`n`) and the queue it woke:
 * parsing ~35 columns per completed job cost a drain ~10 µs of CPU per job.
 */
export function settleSql(full: boolean): string {
  return `
  WITH input AS (
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $9::boolean[]) WITH ORDINALITY
      AS i(id, token, outcome, result, error, retry_at, dead_reason, crashed, n)
  ), done AS (
    UPDATE jobs j SET
      state = CASE
        WHEN i.outcome = 'succeeded' THEN 'succeeded'
        WHEN i.outcome = 'released' AND (i.retry_at IS NULL OR i.retry_at <= $8) THEN 'queued'
        WHEN i.outcome = 'released' THEN 'scheduled'
        WHEN i.retry_at IS NULL THEN 'dead'
        WHEN i.retry_at <= $8 THEN 'queued'
        ELSE 'scheduled' END,
      result = CASE WHEN i.outcome = 'succeeded' THEN i.result::json ELSE j.result END,
      last_error = CASE WHEN i.outcome IN ('failed', 'timed_out', 'crashed') THEN i.error ELSE j.last_error END,
      run_at = CASE WHEN i.outcome IN ('failed', 'timed_out', 'crashed') AND i.retry_at IS NOT NULL THEN i.retry_at
        WHEN i.outcome = 'released' AND i.retry_at > $8 THEN i.retry_at ELSE j.run_at END,
      dead_reason = CASE WHEN i.outcome IN ('failed', 'timed_out', 'crashed') AND i.retry_at IS NULL THEN i.dead_reason ELSE j.dead_reason END,
      attempts = CASE WHEN i.outcome = 'released' THEN greatest(j.attempts - 1, 0) ELSE j.attempts END,
      crashes = CASE WHEN i.outcome IN ('failed', 'timed_out', 'crashed') AND i.crashed THEN j.crashes + 1 ELSE j.crashes END,
      finished_at = CASE WHEN i.outcome = 'succeeded' OR (i.outcome IN ('failed', 'timed_out', 'crashed') AND i.retry_at IS NULL)
        THEN $8 ELSE j.finished_at END,
      updated_at = $8, lease_token = NULL, lease_expires_at = NULL, lease_call = $10::text || ':' || i.n
    FROM input i
    -- The plan must be: for each input row, the job by primary key. A plain
    -- \`j.state = 'running'\` lets the planner scan the running-jobs index
    -- instead and re-read the input for every running job (n x m). A token
    -- is only set while running, so the token match fences; the state test is
    -- kept as a check the planner cannot turn into that index scan.
    WHERE j.id = i.id AND j.lease_token = i.token AND starts_with(j.state, 'running')
    RETURNING ${full ? 'j.*' : 'j.id, j.state, j.queue, j.lease_seq, j.worker_id, j.leased_at'},
      i.n, i.outcome AS attempt_outcome, i.error AS attempt_error,
      -- A requeued job is due work; a keyed job that ended frees a slot of its
      -- key, which another node may be waiting for (it would otherwise only
      -- find out at its next poll).
      CASE WHEN j.state = 'queued' OR j.concurrency_key IS NOT NULL THEN j.queue END AS woke
  ), attempt AS (
    -- A success writes no attempt row: the job row keeps everything it would
    -- hold (lease_seq, worker_id, leased_at, finished_at), and getAttempts
    -- reads it from there (queries.ts, migration 0009). One heap and one index
    -- insert fewer per job.
    INSERT INTO attempts (job_id, attempt, worker_id, started_at, ended_at, outcome, error)
    SELECT id, lease_seq, coalesce(worker_id, ''), coalesce(leased_at, $8), $8, attempt_outcome,
      CASE WHEN attempt_outcome IN ('failed', 'timed_out', 'crashed') THEN attempt_error END
    FROM done WHERE attempt_outcome <> 'succeeded'
  ), finished AS (
    SELECT queue, count(*) AS n FROM done WHERE state IN ('succeeded', 'dead') GROUP BY queue
  ), counted AS (
    INSERT INTO queue_counts (queue, kind, n) SELECT queue, 'finished', n FROM finished ORDER BY queue
    ON CONFLICT (queue, kind) DO UPDATE SET n = queue_counts.n + excluded.n
  )
  ${
    full
      ? 'SELECT * FROM done'
      : `SELECT CASE WHEN count(*) <> cardinality($1::bigint[]) THEN coalesce(json_agg(n), '[]') END AS matched,
    json_agg(DISTINCT woke) FILTER (WHERE woke IS NOT NULL) AS woke FROM done`
  }`;
}

export const SETTLE = settleSql(true);
export const SETTLE_LEAN = settleSql(false);

/**
 * A batch of successes only, answered like SETTLE_LEAN: what a drain sends.
 * $1 ids (a batch `findsById` allows), $2 tokens, $3 results (json text), $4 now,
 * $5 the batch's id, the rows' mark as it is (no id comes twice). The same
 * row changes as SETTLE's success branch, without its per-row CASEs over
 * eight input arrays and without the attempts insert (a success writes none):
 * ~1.5 µs less server time per job at 40 a statement (docs/benchmarks.md,
 * seventh pass). Its rows are found by one index scan over the ids, not a
 * join with the unnested input (a sixth fewer buffer hits, docs/benchmarks.md
 * "PostgreSQL: server CPU per job"); each row's token, result and place
 * (`n`) are read at its id's position, which is why an id may come only once.
 */
export const SETTLE_SUCCEEDED = `
  WITH done AS (
    UPDATE jobs j SET state = 'succeeded', result = ($3::text[])[array_position($1::bigint[], j.id)]::json,
      finished_at = $4, updated_at = $4, lease_token = NULL, lease_expires_at = NULL, lease_call = $5
    -- See SETTLE for the state test.
    WHERE j.id = ANY($1::bigint[]) AND j.lease_token = ($2::text[])[array_position($1::bigint[], j.id)] AND starts_with(j.state, 'running')
    RETURNING j.queue, array_position($1::bigint[], j.id) AS n, CASE WHEN j.concurrency_key IS NOT NULL THEN j.queue END AS woke
  ), counted AS (
    INSERT INTO queue_counts (queue, kind, n) SELECT queue, 'finished', count(*) FROM done GROUP BY queue ORDER BY queue
    ON CONFLICT (queue, kind) DO UPDATE SET n = queue_counts.n + excluded.n
  )
  SELECT CASE WHEN count(*) <> cardinality($1::bigint[]) THEN coalesce(json_agg(n), '[]') END AS matched,
    json_agg(DISTINCT woke) FILTER (WHERE woke IS NOT NULL) AS woke FROM done`;

/** Most transitions in one statement. */
const MAX_BATCH = 1000;

export interface SettleBatchOptions {
  pool: pg.Pool;
  clock: () => number;
  /** Queues that got due work (a retry due now, a release): wake listeners after the commit. */
  woke: (queues: Set<string>) => void;
  retryForMs?: number;
}

export class SettleBatch {
  readonly #calls = new OneInFlight<Pending>((pending) => Math.min(pending.length, MAX_BATCH), (batch) => this.#run(batch));
  #closed = false;
  readonly #retryForMs: number;
  readonly #stats = { batches: 0, ops: 0, lastBatchSize: 0 };

  constructor(private readonly options: SettleBatchOptions) {
    this.#retryForMs = options.retryForMs ?? 30_000;
  }

  /** Batches committed, the calls they carried, and the size of the last one (cheap to read for metrics). */
  get stats(): { batches: number; ops: number; lastBatchSize: number } {
    return { ...this.#stats };
  }

  submit(jobId: string, token: string, settlement: Settlement): Promise<FenceResult>;
  submit(jobId: string, token: string, settlement: Settlement, row: boolean): Promise<FenceResult | MatchResult>;
  submit(jobId: string, token: string, settlement: Settlement, row = true): Promise<FenceResult | MatchResult> {
    if (this.#closed) return Promise.reject(new DroverError('store_unavailable', 'the store is closed'));
    const id = parseJobId(jobId);
    if (id === null) return Promise.resolve({ ok: false, reason: 'not_found' });
    // Serialised here, not when the batch is built: a result that is not JSON
    // (a cycle, a BigInt) must fail its own call, not the whole batch.
    let result: string | null = null;
    try {
      if (settlement.kind === 'succeeded') result = toJson(settlement.result);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<FenceResult | MatchResult>((resolve, reject) => this.#calls.push({ id, token, settlement, result, row, resolve, reject }));
  }

  /** Refuse new calls and wait for the queued ones. */
  close(): Promise<void> {
    this.#closed = true;
    return this.#calls.drain();
  }

  /**
   * Open a connection of the pool and prepare the successes' statement on it
   * (for no jobs: it changes nothing), so the first batch of a drain does not
   * wait for both. Failures are left to the first real batch to meet.
   */
  warm(): void {
    if (this.#closed) return;
    void this.options.pool.query({ name: 'drover_settle_succeeded', text: SETTLE_SUCCEEDED, values: ['{}', '{}', '{}', this.options.clock(), ''] }).catch(() => undefined);
  }

  async #run(batch: Pending[]): Promise<void> {
    const started = Date.now();
    // One id for every try of this batch: a retry recognises the rows an earlier try settled by it.
    const id = randomUUID();
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#settle(batch, id);
        this.#stats.batches++;
        this.#stats.ops += batch.length;
        this.#stats.lastBatchSize = batch.length;
        return;
      } catch (error) {
        if (!isTransient(error) || Date.now() - started > this.#retryForMs) {
          const wrapped = storeError(error, 'recording job outcomes');
          for (const p of batch) p.reject(wrapped);
          return;
        }
        await delay(Math.min(2_000, 50 * 2 ** attempt));
      }
    }
  }

  /** The general statement: any mix of outcomes, rows back when `full`. */
  #general(batch: Pending[], id: string, now: number, full: boolean): pg.QueryConfig {
    return {
      name: full ? 'drover_settle' : 'drover_settle_lean',
      text: full ? SETTLE : SETTLE_LEAN,
      values: [
        arrayParamOf(batch, idOf),
        arrayParamOf(batch, tokenOf),
        arrayParam(batch.map((p) => (p.settlement.kind === 'failed' ? p.settlement.request.outcome : p.settlement.kind))),
        arrayParamOf(batch, resultOf),
        arrayParam(batch.map((p) => (p.settlement.kind === 'failed' ? p.settlement.request.error : null))),
        arrayParam(batch.map((p) => (p.settlement.kind === 'failed' ? p.settlement.request.retryAt : p.settlement.kind === 'released' ? (p.settlement.runAt ?? null) : null))),
        arrayParam(batch.map((p) => (p.settlement.kind === 'failed' ? (p.settlement.request.deadReason ?? 'exhausted') : null))),
        now,
        arrayParam(batch.map((p) => p.settlement.kind === 'failed' && p.settlement.request.crashed === true)),
        id,
      ],
    };
  }

  /** Successes only, no rows back (see SETTLE_SUCCEEDED). */
  #succeeded(batch: Pending[], id: string, now: number): pg.QueryConfig {
    return {
      name: 'drover_settle_succeeded',
      text: SETTLE_SUCCEEDED,
      values: [arrayParamOf(batch, idOf), arrayParamOf(batch, tokenOf), arrayParamOf(batch, resultOf), now, id],
    };
  }

  async #settle(batch: Pending[], id: string): Promise<void> {
    const now = this.options.clock();
    const full = batch.some((p) => p.row);
    const { rows } = await this.options.pool.query(
      !full && batch.every((p) => p.settlement.kind === 'succeeded') && findsById(batch) ? this.#succeeded(batch, id, now) : this.#general(batch, id, now, full),
    );
    /** Places in the batch (0-based) of the calls the statement did not settle. */
    const unmatched: number[] = [];
    if (full) {
      // Each row names its call by place in the batch. An (id, token) pair is
      // settled at most once, even when it came twice in one batch: the update
      // takes one of them, and the other is answered as stale, as it would be later.
      const settled: Array<(RawJob & { n: number; woke: string | null }) | undefined> = new Array(batch.length);
      const woken = new Set<string>();
      for (const raw of rows as Array<RawJob & { n: number; woke: string | null }>) {
        settled[raw.n - 1] = raw;
        if (raw.woke !== null) woken.add(raw.woke);
      }
      for (let i = 0; i < batch.length; i++) {
        const p = batch[i]!;
        const raw = settled[i];
        if (raw === undefined) unmatched.push(i);
        else if (p.row) p.resolve({ ok: true, job: toJobRow(raw) });
        else p.resolve(MATCHED);
      }
      if (woken.size > 0) this.options.woke(woken);
    } else {
      const { matched, woke } = (rows[0] ?? { matched: [], woke: null }) as { matched: number[] | null; woke: string[] | null };
      if (matched === null) for (const p of batch) p.resolve(MATCHED);
      else {
        const settled = new Set(matched);
        for (let i = 0; i < batch.length; i++) {
          if (settled.has(i + 1)) batch[i]!.resolve(MATCHED);
          else unmatched.push(i);
        }
      }
      if (woke !== null) this.options.woke(new Set(woke));
    }
    if (unmatched.length > 0) await this.#answerUnmatched(batch, unmatched, id);
  }

  /**
   * Rare (stale holders, bad ids, a retry whose earlier try committed): tell
   * "gone" from "stale" from "settled by an earlier try of this batch" (its
   * mark, see the file's header). The batch is committed, so a failure here
   * must not make #run settle it again: unread, the calls are answered stale.
   */
  async #answerUnmatched(batch: Pending[], unmatched: number[], id: string): Promise<void> {
    let found: Map<number, FencedRow> | null = null;
    try {
      const columns = unmatched.some((i) => batch[i]!.row) ? '*' : 'id, state, queue, concurrency_key, lease_call';
      const { rows } = await this.options.pool.query<FencedRow>(`SELECT ${columns} FROM jobs WHERE id = ANY($1::bigint[])`, [unmatched.map((i) => batch[i]!.id)]);
      found = new Map(rows.map((r) => [Number(r.id), r]));
    } catch {
      found = null;
    }
    const woken = new Set<string>();
    for (const i of unmatched) {
      const p = batch[i]!;
      const raw = found?.get(p.id);
      // A by-id batch (no id twice) marks its rows with the bare id.
      if (raw !== undefined && (raw.lease_call === markOf(id, i + 1) || raw.lease_call === id)) {
        // Its wake-up went with the lost answer: a requeued job, a freed key (spurious if it moved on since: harmless).
        if (raw.state === 'queued' || raw.concurrency_key !== null) woken.add(raw.queue);
        // A call that wants its row made the read take every column.
        p.resolve(p.row ? { ok: true, job: toJobRow(raw as unknown as RawJob) } : MATCHED);
      } else p.resolve({ ok: false, reason: found === null || raw !== undefined ? 'stale_lease' : 'not_found' });
    }
    if (woken.size > 0) this.options.woke(woken);
  }
}
