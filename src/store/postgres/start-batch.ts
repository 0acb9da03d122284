/**
 * Batched `start` marks: every job whose handler is about to run on this node
 * records it (`started_seq = lease_seq`, migration 0004), so a reclaim can
 * tell a crashed attempt from a job that was only leased ahead. It sits on
 * the hot path, and it is latency that counts: a slot whose job waits for
 * its mark runs nothing (with concurrency 10 and no-op handlers, the drain
 * was 10 jobs per mark round trip).
 *
 * Start on send. A caller that passes a `StartWatch` (the dispatcher, for a
 * job whose lease cannot have expired yet) is answered "started" once its
 * mark is on its way, not once it is answered: when `Pipelined.query` says
 * the statement's bytes went to the kernel in the write itself, with at most
 * one statement ahead of it unanswered and the connection in good standing.
 * What holds then:
 * - A node killed after that (SIGKILL, a handler killing its own process)
 *   still has its mark delivered: on loopback or a Unix socket the bytes are
 *   in the server's socket already, over a network the kernel keeps sending
 *   them after the process is gone. The backend runs what it has read even
 *   with its client gone, and its own exit comes at its next failed write;
 *   with at most one statement ahead, that write comes after this mark's
 *   commit (pipelined.ts says why a deeper pipeline could lose it). So a
 *   started handler that kills its node is counted as a crash. The narrow
 *   exceptions, each leaving one crash uncounted and never a job lost or run
 *   twice: a server crash before the asynchronous commit reaches the WAL
 *   (below); over a network, a reset that drops segments still unsent;
 *   `client_connection_check_interval` set on the server.
 * - A job whose mark was not written (still in the batch at a crash) is not
 *   counted: nothing reached the store.
 * - The watch gets the batch's answer as a promise (`watch.answered`): the
 *   dispatcher writes the attempt's outcome only after it, so a completion
 *   never overtakes its own mark (racing it for the row cost the server
 *   lock waits, docs/benchmarks.md).
 * - A mark that finds the lease gone (cancelled, reclaimed, taken over)
 *   calls `watch.lost`: the dispatcher aborts a handler still running
 *   through its signal and writes no outcome for the attempt (a completion
 *   would be fenced by the token anyway).
 * - A mark statement that fails after the handler began calls
 *   `watch.failed`: the dispatcher marks it once more; if that fails too the
 *   handler runs on with its start uncounted (a node dying under it hands
 *   the job back as `released`, and it runs again).
 * Without a watch, over TLS, or when the connection is not in good standing
 * the caller is answered when the mark is, as before.
 *
 * Marks are pipelined, not one-in-flight: the marks of one cascade of
 * promise callbacks (every job whose slot freed in it) go out together at the
 * end of it (`process.nextTick`), while up to `START_IN_FLIGHT - 1` earlier
 * batches are still out. One batch in flight made a mark wait for a whole
 * batch's round trip before its own began. Spreading one cascade's marks over
 * several statements, so that one part's handlers run while the rest are on
 * the server, measured worse: three times the statements on a two-core
 * machine (docs/benchmarks.md). The batches in flight share one pipelined
 * connection (pipelined.ts): a pool of three woke three backends, and the
 * drain made a third fewer mark statements and spent ~10 % less CPU per job
 * on one. Its sessions commit asynchronously, like the lease pool's (no wait
 * for the WAL flush): the mark is visible to every node once committed, and
 * only a server crash can lose it, which leaves one crash uncounted, never a
 * job lost or run twice. Marks riding on the completions' durable commit
 * instead measured worse: the flush made every cascade wait longer.
 */
import { DroverError } from '../../core/errors.js';
import type { StartResult, StartWatch } from '../engine.js';
import { arrayParamOf, findsById, idOf, storeError, tokenOf } from './connection.js';
import { WRITTEN_AHEAD_MAX, type Pipelined } from './pipelined.js';
import { parseJobId } from './rows.js';

/**
 * Most mark statements out at once, all on the one pipelined connection. Two:
 * a mark then goes out with at most one ahead of it (`WRITTEN_AHEAD_MAX`), so
 * its handlers may start on send (pipelined.ts); a third behind two would wait for its own
 * answer, holding its slots meanwhile. (While every mark waited for its
 * answer, 1, 2 or 6 made no difference.)
 */
export const START_IN_FLIGHT = WRITTEN_AHEAD_MAX + 1;

/** $1 ids, $2 tokens. Fenced like a settlement (see settle-batch.ts for the plan note on the state test). */
const JOINED = `
    FROM unnest($1::bigint[], $2::text[]) AS i(id, token)
    WHERE j.id = i.id AND j.lease_token = i.token AND starts_with(j.state, 'running')`;

/**
 * The same fence for a batch `findsById` allows (small, no id twice): its rows
 * found by one index scan over the ids, each row's token read at its id's
 * position, not by joining the unnested input: a third fewer buffer hits per
 * mark (docs/benchmarks.md, "PostgreSQL: server CPU per job").
 */
const BY_ID = `
    WHERE j.id = ANY($1::bigint[]) AND j.lease_token = ($2::text[])[array_position($1::bigint[], j.id)] AND starts_with(j.state, 'running')`;

const MARK = 'UPDATE jobs j SET started_seq = j.lease_seq';

/**
 * The usual statements: no rows back, only the count the server reports with
 * the command (`UPDATE n`). A row is counted once however many marks of the
 * batch name it, so a count equal to the batch's size means every mark
 * matched (the usual answer); anything less sends `START` for the batch.
 * Without a result row the driver parses no row description and no row, and
 * the server builds no aggregate (docs/benchmarks.md, eighth pass).
 */
export const START_COUNTED = `${MARK}${JOINED}`;
export const START_COUNTED_BY_ID = `${MARK}${BY_ID}`;

/**
 * The same marks with which of them matched: only after a counted statement
 * counted fewer. Marking again is harmless (a matched row gets the same
 * `started_seq` again), and a mark that matched the first time but not now
 * lost its lease in between: the answer "lost" is then true already. One row
 * comes back: null when all matched, else the marks that did (an empty list
 * when none did: json_agg of no rows is null), which the caller compares with
 * its tokens.
 */
export const START = `
  WITH marked AS (
    ${MARK}${JOINED}
    RETURNING j.id, j.lease_token
  )
  SELECT CASE WHEN count(*) <> cardinality($1::bigint[]) THEN coalesce(json_agg(json_build_array(id, lease_token)), '[]') END AS matched FROM marked`;

/** Most marks in one statement. */
const MAX_BATCH = 1000;

const STARTED: StartResult = Object.freeze({ ok: true });
const STALE = Object.freeze({ ok: false, reason: 'stale_lease' } as const);

interface Pending {
  id: number;
  token: string;
  /** Told of the answer when it was answered "started" at send (`StartWatch`). */
  watch: StartWatch | undefined;
  /** Answered "started" when its mark was written. */
  sent: boolean;
  resolve(result: StartResult): void;
  reject(error: unknown): void;
}

export class StartBatch {
  #pending: Pending[] = [];
  #inFlight = 0;
  #scheduled = false;
  /** Settled when nothing is queued or out (close). */
  #idle: Array<() => void> = [];
  #closed = false;

  constructor(private readonly pool: Pipelined) {}

  /** `watch`: answer "started" once the mark is on its way (see the header), and tell it the answer only if it is not that. */
  submit(jobId: string, token: string, watch?: StartWatch): Promise<StartResult> {
    if (this.#closed) return Promise.reject(new DroverError('store_unavailable', 'the store is closed'));
    const id = parseJobId(jobId);
    if (id === null) return Promise.resolve({ ok: false, reason: 'not_found' });
    return new Promise<StartResult>((resolve, reject) => {
      this.#pending.push({ id, token, watch, sent: false, resolve, reject });
      this.#schedule();
    });
  }

  /** Refuse new calls and wait for the queued ones. */
  close(): Promise<void> {
    this.#closed = true;
    if (this.#pending.length === 0 && this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /**
   * Open the marks connection and prepare the usual mark statement on it (a
   * mark of no jobs: it changes nothing), so the first jobs' marks do not wait
   * for both, and find the connection in good standing. Failures are left
   * to the first real mark to meet.
   */
  warm(): void {
    if (this.#closed) return;
    this.#inFlight++;
    void this.pool
      .query({ name: 'drover_start_by_id', text: START_COUNTED_BY_ID, values: ['{}', '{}'] })
      .catch(() => undefined)
      .finally(() => this.#answered());
  }

  /** A mark statement (or the warming one) is answered: the next batch goes out, or the waiters learn the marks are idle. */
  #answered(): void {
    this.#inFlight--;
    if (this.#pending.length > 0) this.#schedule();
    else if (this.#inFlight === 0) for (const resolve of this.#idle.splice(0)) resolve();
  }

  /** At the end of the current cascade, so the marks of every job started in it share one statement. */
  #schedule(): void {
    if (this.#scheduled || this.#inFlight >= START_IN_FLIGHT) return;
    this.#scheduled = true;
    process.nextTick(() => {
      this.#scheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    while (this.#inFlight < START_IN_FLIGHT && this.#pending.length > 0) {
      const batch = this.#pending.splice(0, MAX_BATCH);
      this.#inFlight++;
      const run = this.#run(batch);
      // Those answered at send (in the call above) learn when the store has answered.
      for (const p of batch) if (p.sent) p.watch!.answered(run);
      void run.finally(() => this.#answered());
    }
  }

  async #run(batch: Pending[]): Promise<void> {
    let matched: Array<[number, string]> | null;
    try {
      const values = [arrayParamOf(batch, idOf), arrayParamOf(batch, tokenOf)];
      const { rowCount } = await this.pool.query(
        findsById(batch) ? { name: 'drover_start_by_id', text: START_COUNTED_BY_ID, values } : { name: 'drover_start_counted', text: START_COUNTED, values },
        batch.some((p) => p.watch !== undefined) ? () => sendAndGo(batch) : undefined,
      );
      matched = null;
      if (rowCount !== batch.length) {
        const { rows } = await this.pool.query<{ matched: Array<[number, string]> | null }>({ name: 'drover_start', text: START, values });
        matched = rows[0]?.matched ?? null;
      }
    } catch (error) {
      // Not started: the caller does not run the handler, and the lease comes back unspent.
      // One already running is told instead (its caller marks it again or runs it uncounted).
      const wrapped = storeError(error, 'marking jobs started');
      for (const p of batch) {
        if (p.sent) p.watch!.failed(wrapped);
        else p.reject(wrapped);
      }
      return;
    }
    if (matched === null) {
      // Every mark matched (the usual case: a row matches at most one of the batch's marks).
      for (const p of batch) if (!p.sent) p.resolve(STARTED);
      return;
    }
    let unmatched: Pending[] | null = null;
    const started = new Map(matched);
    for (const p of batch) {
      if (started.get(p.id) !== p.token) (unmatched ??= []).push(p);
      else if (!p.sent) p.resolve(STARTED);
    }
    if (unmatched === null) return;
    // Marks answered at send need no "gone" or "stale": their watch only learns that the lease was lost.
    if (unmatched.every((p) => p.sent)) {
      for (const p of unmatched) p.watch!.lost(STALE);
      return;
    }
    // Rare (a lease reaped or cancelled meanwhile): tell "gone" from "stale".
    let known: Set<number> | null = null;
    try {
      const { rows: exists } = await this.pool.query<{ id: number }>({ text: 'SELECT id FROM jobs WHERE id = ANY($1::bigint[])', values: [unmatched.map((p) => p.id)] });
      known = new Set(exists.map((r) => Number(r.id)));
    } catch {
      known = null;
    }
    for (const p of unmatched) {
      const result: StartResult = { ok: false, reason: known === null || known.has(p.id) ? 'stale_lease' : 'not_found' };
      if (p.sent) p.watch!.lost(result);
      else p.resolve(result);
    }
  }
}

/** The batch's mark is on its way: those whose caller watches start now. */
function sendAndGo(batch: readonly Pending[]): void {
  for (const p of batch) {
    if (p.watch === undefined) continue;
    p.sent = true;
    p.resolve(STARTED);
  }
}
