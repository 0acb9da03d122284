/**
 * Job reads for the API, console and CLI (the engine's `JobReads` role): one
 * job, its attempts, a filtered page of jobs, an event, per-queue counts, and
 * the payload indexes that make payload filters cheap. Reads run directly on
 * the connection (never inside a write batch); a malformed id finds nothing
 * rather than throwing.
 *
 * Functions given a statements getter call it only for a well-formed id, as the
 * engine always has: a malformed id is answered with nothing even by a store
 * that is closed or not migrated.
 */
import type Database from 'better-sqlite3';
import { payloadIndexName } from '../../core/payload-filter.js';
import type { AttemptRow, EventRow, JobRow } from '../../core/types.js';
import type { EventMerge, JobFilter, JobReads, QueueStats } from '../engine.js';
import { readStatements, type EngineCore, type RolePart } from './engine-core.js';
import { parseJobId, toAttemptRow, toEventRow, toJobRow, toQueueStats } from './rows.js';
import type { FixedStatements, SqliteStatements } from './statements.js';
import { eventMerges } from './trigger-groups.js';

/** The engine's `JobReads` role: each read waits until the writes before it are durable (engine-core.ts `visible`). */
export class SqliteJobReads implements RolePart<JobReads> {
  readonly #core: EngineCore;

  constructor(core: EngineCore) {
    this.#core = core;
  }

  async getJob(id: string): Promise<JobRow | null> {
    await this.#core.visible();
    return readJob(() => readStatements(this.#core).fixed, id);
  }

  async getAttempts(jobId: string): Promise<AttemptRow[]> {
    await this.#core.visible();
    return readAttempts(() => readStatements(this.#core).fixed, jobId);
  }

  async listJobs(filter: JobFilter): Promise<JobRow[]> {
    await this.#core.visible();
    return readJobPage(() => readStatements(this.#core), filter);
  }

  async getEvent(id: string): Promise<EventRow | null> {
    await this.#core.visible();
    return readEvent(readStatements(this.#core).fixed, id);
  }

  async eventMerges(eventId: string): Promise<EventMerge[]> {
    await this.#core.visible();
    readStatements(this.#core);
    return eventMerges(this.#core.prepared.t, eventId);
  }

  async ensurePayloadIndexes(paths: ReadonlyArray<readonly string[]>): Promise<string[]> {
    return buildPayloadIndexes(this.#core.db, paths);
  }

  async queueStats(): Promise<QueueStats[]> {
    await this.#core.visible();
    return readQueueStats(readStatements(this.#core).fixed);
  }

  async handlersWithQueuedJobs(handlers: readonly string[]): Promise<string[]> {
    await this.#core.visible();
    // jobs_queued_by_handler (migration 0003): the first queued row of a handler, or none.
    this.#queuedProbe ??= this.#core.db.prepare<[string], 1>("SELECT 1 FROM jobs WHERE handler = ? AND state = 'queued' LIMIT 1").pluck();
    const probe = this.#queuedProbe;
    return handlers.filter((handler) => probe.get(handler) !== undefined);
  }

  #queuedProbe: Database.Statement<[string], 1> | undefined;
}

export function readJob(s: () => FixedStatements, id: string): JobRow | null {
  const n = parseJobId(id);
  const raw = n === null ? undefined : s().jobById.get(n);
  return raw ? toJobRow(raw) : null;
}

export function readAttempts(s: () => FixedStatements, jobId: string): AttemptRow[] {
  const n = parseJobId(jobId);
  return n === null ? [] : s().attemptsByJob.all(n, n).map(toAttemptRow);
}

export function readJobPage(statements: () => SqliteStatements, filter: JobFilter): JobRow[] {
  let before: number | null = null;
  if (filter.before !== undefined) {
    before = parseJobId(filter.before);
    if (before === null) return []; // no job id sorts below a malformed cursor
  }
  return statements().listJobs(filter, before).map(toJobRow);
}

export function readEvent(s: FixedStatements, id: string): EventRow | null {
  const raw = s.eventById.get(id);
  return raw ? toEventRow(raw) : null;
}

export function readQueueStats(s: FixedStatements): QueueStats[] {
  return toQueueStats(s.countsByQueue.all(), s.oldestQueued.all());
}

/** Builds the missing indexes, one per payload path; answers the names it built. */
export function buildPayloadIndexes(db: Database.Database, paths: ReadonlyArray<readonly string[]>): string[] {
  const built: string[] = [];
  for (const path of paths) {
    const name = payloadIndexName(path); // checks the path: its segments go into the SQL as a literal
    if (db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?").get(name)) continue;
    // The same expression listJobs writes, so the planner matches it. Runs at start, before the node takes work.
    db.exec(`CREATE INDEX IF NOT EXISTS ${name} ON jobs (json_extract(payload, '$.${path.join('.')}'))`);
    built.push(name);
  }
  return built;
}
