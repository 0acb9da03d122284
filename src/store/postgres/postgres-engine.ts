/**
 * The PostgreSQL storage engine: many Drover nodes on one database.
 *
 * - A bounded `pg.Pool`; every connection's search_path is the engine's
 *   schema (`DROVER_PG_SCHEMA`, default `drover`), so several Drover
 *   installations (or test runs) share a database without sharing tables.
 * - Hot paths are single statements: a lease (see `lease.ts`), a batch of
 *   completions (`settle-batch.ts`), a reap. Intake is one short transaction.
 * - Wakeups: local listeners are called right after a commit; other nodes
 *   hear about it through LISTEN/NOTIFY (`notifier.ts`).
 * - Node liveness: one row per node in `nodes`, heartbeated by the runtime;
 *   peers reclaim the jobs of a node whose row goes stale. A session advisory
 *   lock on the node id keeps two live processes from using the same id.
 *
 * The engine is the `StorageEngine` interface wired to its parts: intake and
 * the hot path of a worker's lease (lease, start, heartbeat, complete, fail,
 * release) stay here on the engine's own fields and helpers; the rest is one
 * part per role, sharing what engine-core.ts names, which the base class
 * (../engine-base.ts) forwards to: job reads
 * (job-reads-part.ts), durable execution (durable-store.ts), upkeep, operator
 * actions and backup (upkeep.ts), nodes (node-registry.ts), keys, metadata
 * and audit (records.ts).
 */
import pg from 'pg';
import { DroverError, toError } from '../../core/errors.js';
import type { RatePolicy } from '../../core/rate-window.js';
import type { LeasedJob, NewJob } from '../../core/types.js';
import type {
  BackupSnapshot,
  EnqueueOptions,
  EnqueueResult,
  FailRequest,
  FenceResult,
  MatchResult,
  StartResult,
  StartWatch,
  IngestItem,
  IngestResult,
  LeaseRequest,
  MigrateOptions,
  MigrationStatus,
  RateStart,
  StorageEngine,
  StoreCapabilities,
  WorkListener,
  WithoutRow,
} from '../engine.js';
import { EngineBase, type EngineParts } from '../engine-base.js';
import { assertSchemaName, clientConfig, DEFAULT_TIMEOUTS, inTransaction, isTransient, retryConflicts, storeError, type Query, type StoreTimeouts } from './connection.js';
import { ConnectionErrors, type ConnectionErrorKind, type ConnectionErrorListener } from './connection-errors.js';
import { enqueuePlain, insertJobs, isPlain, type IntakeEffects } from './intake.js';
import { ingestItems } from './ingest.js';
import { intakeTransaction } from './intake-transaction.js';
import { PostgresDurableStore } from './durable-store.js';
import type { EngineCore } from './engine-core.js';
import { PostgresJobReads } from './job-reads-part.js';
import { leaseFast, leaseInTransaction, newLeaseCall, planLease, RELEASE_BY_CALL } from './lease.js';
import { migratePostgres } from './migrator.js';
import { PostgresNodeRegistry } from './node-registry.js';
import * as q from './queries.js';
import { PostgresRecords } from './records.js';
import { parseJobId, toEventRow, toJobRow } from './rows.js';
import type { RawJob } from './rows.js';
import { takeRateStart } from './rate-windows.js';
import { SettleBatch, type Settlement } from './settle-batch.js';
import { StartBatch } from './start-batch.js';
import { Pipelined } from './pipelined.js';
import { openPools, poolStats } from './pools.js';
import { Wakeups } from './wakeups.js';
import { EnqueueBatch } from './enqueue-batch.js';
import { UncertainLeases } from './uncertain-leases.js';
import { PostgresUpkeep } from './upkeep.js';
import { Woken } from '../woken.js';

export interface PostgresEngineOptions {
  /** `postgres://user:pass@host:port/database?...` */
  url: string;
  /** Schema holding Drover's tables (created by `migrate`). Default `drover`. */
  schema?: string;
  clock?: () => number;
  /** Most connections in the pool (the LISTEN connection is one more). Default 10. */
  poolMax?: number;
  /** How long `registerNode` waits for a node id held by a process that just died. Default 5000 ms. */
  nodeLockWaitMs?: number;
  /** Deadlines of every connection (see `StoreTimeouts`); unset fields keep their defaults. */
  timeouts?: Partial<StoreTimeouts>;
  /** A connection emitted 'error' and was discarded (once per connection); the engine carries on. */
  onConnectionError?: ConnectionErrorListener;
}

/**
 * @example
 * const engine = openPostgresEngine({ url: 'postgres://postgres@127.0.0.1:5432/drover', schema: 'drover' });
 * await engine.migrate();
 * const [{ job }] = await engine.enqueue([{ handler: 'email', queue: 'default', payload: {}, priority: 0, runAt: Date.now(), maxAttempts: 3 }]);
 * await engine.close();
 */
export class PostgresEngine extends EngineBase implements StorageEngine {
  readonly capabilities: StoreCapabilities = { engine: 'postgres', multiNode: true, crossProcessNotify: true, groupCommit: false, sharedRateLimits: true, leaseAtIntake: true, startOnSend: true };
  readonly schema: string;
  /** The general pool; `#hot` and `#lease` are the hot path's own (pools.ts says why). */
  readonly #pool: pg.Pool;
  readonly #hot: pg.Pool;
  readonly #lease: pg.Pool;
  readonly #marksPool: pg.Pool;
  readonly #marks: Pipelined;
  readonly #clock: () => number;
  readonly #wakeups: Wakeups;
  /** Set by the metrics (store-metrics.ts): another node's NOTIFY arrived this long after it was sent. */
  onNotifyLag: ((seconds: number) => void) | null = null;
  readonly #settle: SettleBatch;
  readonly #starts: StartBatch;
  /** Jobs the lease marked started (id → token), until their start() call; a settle forgets one never started. */
  readonly #markedByLease = new Map<string, string>();
  readonly #enqueues: EnqueueBatch;
  readonly #connectionErrors: ConnectionErrors;
  /** Lease calls whose commit is unknown (the connection broke): undone before the next lease, and again until they expire (uncertain-leases.ts). */
  readonly #uncertain: UncertainLeases;
  #closing: Promise<void> | null = null;
  /** The hot path's other connections were opened (`lease`). */
  #warmed = false;
  // The parts of the roles off the hot path (engine-core.ts), forwarded to by engine-base.ts.
  protected override readonly parts: EngineParts;
  /** The upkeep part, held here too: it also takes the backup (`backupTo`). */
  readonly #upkeep: PostgresUpkeep;

  constructor(options: PostgresEngineOptions) {
    super();
    this.schema = options.schema ?? 'drover';
    assertSchemaName(this.schema);
    this.#clock = options.clock ?? Date.now;
    const connection = { url: options.url, schema: this.schema, applicationName: `drover/${this.schema}`, ...(options.timeouts ? { timeouts: options.timeouts } : {}) };
    this.#connectionErrors = new ConnectionErrors(options.onConnectionError);
    ({ general: this.#pool, hot: this.#hot, lease: this.#lease, marks: this.#marksPool } = openPools(connection, options.poolMax ?? 10));
    // A client whose connection drops emits 'error'; without a listener that
    // would crash the process. Counted, reported once, the client discarded.
    for (const pool of [this.#pool, this.#hot, this.#lease, this.#marksPool]) this.#connectionErrors.watch(pool);
    const checkEveryMs = options.timeouts?.keepAliveIdleMs ?? DEFAULT_TIMEOUTS.keepAliveIdleMs;
    this.#wakeups = new Wakeups(this.#pool, clientConfig(connection), this.schema, {
      checkEveryMs,
      onLost: (error, client) => this.#connectionErrors.report('listen', error, client),
      onLag: (seconds) => this.onNotifyLag?.(seconds),
    });
    const core: EngineCore = {
      schema: this.schema,
      url: options.url,
      pool: this.#pool,
      leasePool: this.#lease,
      clock: this.#clock,
      wakeups: this.#wakeups,
      nodeLockWaitMs: options.nodeLockWaitMs ?? 5_000,
      markedByLease: this.#markedByLease,
      query: this.#query,
      assertOpen: () => this.#assertOpen(),
      run: (what, work) => this.#run(what, work),
      durableWrite: (what, work) => this.#durableWrite(what, work),
    };
    this.#upkeep = new PostgresUpkeep(core);
    this.parts = { reads: new PostgresJobReads(core), durable: new PostgresDurableStore(core), upkeep: this.#upkeep, nodes: new PostgresNodeRegistry(core), records: new PostgresRecords(core) };
    // Settlements name queues only, and a freed concurrency key lets jobs of any handler run: any handler.
    this.#settle = new SettleBatch({ pool: this.#hot, clock: this.#clock, woke: (queues) => void this.#wakeups.committed(Woken.of(queues, null)) });
    this.#uncertain = new UncertainLeases(
      (workerId, calls, now) => this.#query<{ queue: string }>(RELEASE_BY_CALL, [workerId, calls, now]),
      this.#clock,
      (queues) => void this.#wakeups.committed(Woken.of(queues, null)),
    );
    this.#marks = new Pipelined(this.#marksPool);
    this.#starts = new StartBatch(this.#marks);
    // The statement itself notifies other nodes; local listeners are told after it commits.
    // On the hot pool: its generic plan (pools.ts) saves a re-plan per statement.
    this.#enqueues = new EnqueueBatch(
      // Jobs the insert may have leased before its answer was lost go back before this worker's next lease.
      (jobs, options) => enqueuePlain(this.#hot, jobs, this.#clock(), options, this.#wakeups.target, (call, worker, until) => this.#uncertain.note(call, worker, until)),
      (woken) => this.#wakeups.local(woken),
    );
  }

  /** Completion batches (one statement each), for the commit metrics (`drover_store_commit_*`). */
  get stats(): { batches: number; ops: number; lastBatchSize: number } {
    return this.#settle.stats;
  }

  /** Plain-enqueue statements and the calls they carried (enqueue-batch.ts). */
  get enqueueStats(): { statements: number; calls: number } {
    return this.#enqueues.stats;
  }

  /** Connections that emitted 'error' and were discarded, by kind (`drover_store_connection_errors_total`). */
  get connectionErrors(): Readonly<Record<ConnectionErrorKind, number>> {
    return this.#connectionErrors.counts;
  }

  /** Connections of all pools (general and hot path), their limit, and callers waiting for one, for metrics (pools.ts). */
  poolStats(): { total: number; idle: number; waiting: number; max: number } {
    return poolStats([this.#pool, this.#hot, this.#lease], this.#marks.connection);
  }

  async migrate(options: MigrateOptions = {}): Promise<MigrationStatus> {
    this.#assertOpen();
    try {
      return await migratePostgres(this.#pool, this.schema, { clock: this.#clock, ...(options.apply === undefined ? {} : { apply: options.apply }) });
    } catch (error) {
      throw storeError(error, 'migrating');
    }
  }

  async ping(): Promise<void> {
    this.#assertOpen();
    try {
      await this.#pool.query('SELECT 1');
    } catch (error) {
      throw storeError(error, 'ping');
    }
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#uncertain.close();
      await this.#enqueues.drain();
      await this.#starts.close();
      await this.#marks.close();
      await this.#settle.close();
      await this.#wakeups.close();
      await Promise.all([this.#pool.end(), this.#hot.end(), this.#lease.end(), this.#marksPool.end()]);
    })();
    return this.#closing;
  }

  onWork(listener: WorkListener): () => void {
    return this.#wakeups.listen(listener);
  }

  // --- intake -------------------------------------------------------------

  ingest(items: readonly IngestItem[], options?: EnqueueOptions): Promise<IngestResult[]> {
    return this.#intake(async (client, now, effects) => {
      const results = await ingestItems(client, items, now, effects, options);
      return results.map((r) => {
        const result = { event: toEventRow(r.event), jobs: r.jobs.map(toJobRow), created: r.created };
        return { ...result, ...(r.resolvedWaits ? { resolvedWaits: r.resolvedWaits } : {}), ...(r.controls ? { controls: r.controls } : {}) };
      });
    }, options);
  }

  async enqueue(jobs: readonly NewJob[], options?: EnqueueOptions): Promise<EnqueueResult[]> {
    if (isPlain(jobs)) {
      const { rows, leased } = await this.#run('accepting work', () => this.#enqueues.submit(jobs, options));
      if (leased === null) return rows.map((job) => ({ job, created: true }));
      return rows.map((job, n) => {
        const mine = leased[n];
        if (!mine) return { job, created: true };
        // Marked started by the insert, as by a lease (`LeaseRequest.start`): its start() answers at once.
        this.#markedByLease.set(mine.id, mine.leaseToken);
        return { job, created: true, leased: mine };
      });
    }
    return this.#intake(async (client, now, effects) => {
      const results = await insertJobs(client, jobs, now, effects, options);
      return results.map((r) => ({ job: toJobRow(r.raw), created: r.created }));
    }, options);
  }

  // --- execution ----------------------------------------------------------

  async lease(request: LeaseRequest): Promise<LeasedJob[]> {
    this.#assertOpen();
    const plan = planLease(request);
    if (plan === null) return [];
    if (!this.#warmed && request.inProcess === true) {
      // A node's first lease for its own dispatcher (at its start, maybe on a backlog): open the connections
      // its first jobs' marks and completions take, and prepare their statements, while the lease is out,
      // not after it. A remote worker's lease (HTTP) needs no marks connection: its jobs count as started.
      this.#warmed = true;
      this.#starts.warm();
      this.#settle.warm();
    }
    await this.#uncertain.beforeLease(request.workerId);
    const call = newLeaseCall(request, plan, this.#clock());
    try {
      const caps = request.caps;
      const capped = caps !== undefined && (caps.tenants !== undefined || caps.worker !== undefined || caps.key !== undefined);
      // Without caps: the one-statement fast shape, outside any transaction (lease.ts).
      // Marked started by the lease itself (`LeaseRequest.start`): their start() answers at once.
      const fast = capped ? null : await leaseFast(this.#lease, plan, call, (job) => {
        if (job.leaseToken) this.#markedByLease.set(job.id, job.leaseToken);
      });
      return fast ?? (await retryConflicts(() => inTransaction(this.#pool, (client) => leaseInTransaction(client, plan, call, request))));
    } catch (error) {
      // The lease may have committed with only the answer lost: remember the
      // nonce and give those jobs back before this worker leases again.
      if (isTransient(error)) this.#uncertain.note(call.nonce, request.workerId, Math.max(...call.expires));
      throw storeError(error, 'leasing');
    }
  }

  async heartbeat(jobId: string, token: string, leaseMs: number): Promise<FenceResult> {
    const now = this.#clock();
    return this.#fenced(jobId, (id) => this.#query<RawJob>(q.HEARTBEAT, [id, token, now + leaseMs, now]));
  }

  start(jobId: string, token: string, watch?: StartWatch): Promise<StartResult> {
    try {
      this.#assertOpen();
    } catch (error) {
      return Promise.reject(error);
    }
    const marked = this.#markedByLease.get(jobId);
    if (marked !== undefined) {
      this.#markedByLease.delete(jobId);
      if (marked === token) return Promise.resolve({ ok: true });
    }
    return this.#starts.submit(jobId, token, watch);
  }

  complete(jobId: string, token: string, result: unknown): Promise<FenceResult>;
  complete(jobId: string, token: string, result: unknown, options: WithoutRow): Promise<MatchResult>;
  complete(jobId: string, token: string, result: unknown, options?: WithoutRow): Promise<FenceResult | MatchResult> {
    return this.#settleOp(jobId, token, { kind: 'succeeded', result }, options?.row !== false);
  }

  fail(jobId: string, token: string, request: FailRequest): Promise<FenceResult> {
    return this.#settleOp(jobId, token, { kind: 'failed', request });
  }

  release(jobId: string, token: string, runAt?: number): Promise<FenceResult> {
    return this.#settleOp(jobId, token, runAt === undefined ? { kind: 'released' } : { kind: 'released', runAt });
  }

  /** Bytes per table of the schema (indexes and TOAST included), for the storage metrics; not a store operation. */
  async tableSizes(): Promise<Array<{ table: string; bytes: number }>> {
    return (await this.#query<{ table_name: string; bytes: number }>(q.TABLE_SIZES, [])).map((r) => ({ table: r.table_name, bytes: Number(r.bytes) }));
  }

  // --- shared rate limits ---------------------------------------------------

  takeRateStart(scope: string, policy: RatePolicy, now: number): Promise<RateStart> {
    return this.#run('checking a rate limit', () => takeRateStart(this.#pool, scope, policy, now));
  }

  // --- backup (upkeep.ts) -----------------------------------------------------

  backupTo(file: string): Promise<BackupSnapshot> {
    return this.#upkeep.backupTo(file);
  }

  // --- internals ----------------------------------------------------------

  #assertOpen(): void {
    if (this.#closing) throw new DroverError('store_unavailable', `the store (schema ${this.schema}) is closed`);
  }

  async #run<T>(what: string, work: () => Promise<T>): Promise<T> {
    this.#assertOpen();
    try {
      return await work();
    } catch (error) {
      throw storeError(error, what);
    }
  }

  readonly #query: Query = (text, values) => this.#run('query', async () => (await this.#pool.query(text, values)).rows);

  async #intake<T>(work: (client: pg.PoolClient, now: number, effects: IntakeEffects) => Promise<T>, options?: EnqueueOptions): Promise<T> {
    this.#assertOpen();
    return this.#durableWrite('accepting work', (client, effects) => work(client, this.#clock(), effects), options);
  }

  /**
   * A transaction that may queue jobs (intake, or suspended jobs again): their queues are
   * counted and other nodes notified in it (`finishIntake`), this process's
   * listeners after the commit.
   */
  async #durableWrite<T>(what: string, work: (client: pg.PoolClient, effects: IntakeEffects) => Promise<T>, options?: EnqueueOptions): Promise<T> {
    const { value, woken } = await this.#run(what, () => intakeTransaction(this.#pool, this.#wakeups.target, work, options));
    this.#wakeups.local(woken);
    return value;
  }

  async #fenced(jobId: string, update: (id: number) => Promise<RawJob[]>): Promise<FenceResult> {
    const id = parseJobId(jobId);
    if (id === null) return { ok: false, reason: 'not_found' };
    const raw = (await update(id))[0];
    if (raw) return { ok: true, job: toJobRow(raw) };
    const exists = (await this.#query(q.JOB_EXISTS, [id])).length > 0;
    return { ok: false, reason: exists ? 'stale_lease' : 'not_found' };
  }

  #settleOp(jobId: string, token: string, settlement: Settlement): Promise<FenceResult>;
  #settleOp(jobId: string, token: string, settlement: Settlement, row: boolean): Promise<FenceResult | MatchResult>;
  #settleOp(jobId: string, token: string, settlement: Settlement, row = true): Promise<FenceResult | MatchResult> {
    try {
      this.#assertOpen();
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#markedByLease.size > 0) this.#markedByLease.delete(jobId);
    return this.#settle.submit(jobId, token, settlement, row);
  }
}

/** Construct the engine (no connection is made until the first call). */
export function openPostgresEngine(options: PostgresEngineOptions): PostgresEngine {
  try {
    return new PostgresEngine(options);
  } catch (error) {
    if (error instanceof DroverError) throw error;
    throw new DroverError('store_unavailable', `cannot open the PostgreSQL store: ${toError(error).message}`, { cause: error });
  }
}
