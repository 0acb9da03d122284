/**
 * Job reads for the API, console and CLI: one job, its attempts, a filtered
 * page of jobs, an event, per-queue counts, and the payload indexes that make
 * payload filters cheap. Reads run directly on the connection (never inside a
 * write batch); a malformed id finds nothing rather than throwing.
 *
 * Functions given a statements getter call it only for a well-formed id, as the
 * engine always has: a malformed id is answered with nothing even by a store
 * that is closed or not migrated.
 */
import type Database from 'better-sqlite3';
import { payloadIndexName } from '../../core/payload-filter.js';
import type { AttemptRow, EventRow, JobRow } from '../../core/types.js';
import type { JobFilter, QueueStats } from '../engine.js';
import { parseJobId, toAttemptRow, toEventRow, toJobRow, toQueueStats } from './rows.js';
import type { FixedStatements, SqliteStatements } from './statements.js';

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
