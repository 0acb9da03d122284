/** Reads of jobs, attempts, events and queue depth: nothing here changes state. */
import type { AttemptRow, EventRow, JobRow, JobState } from '../../core/types.js';
import type { PayloadFilter } from '../../core/payload-filter.js';
import type { MergeKind } from '../../core/trigger-control.js';
import type { StoreRole } from './capabilities.js';

export interface JobFilter {
  state?: JobState;
  handler?: string;
  queue?: string;
  eventId?: string;
  /**
   * Payload fields that must hold these values: `path` names nested members
   * (`['customer', 'id']`, each segment letters, digits, `_` and `-`), `value`
   * is compared with the member as text (a string member, or a number written
   * the same way). Checked row by row unless an index covers the field (docs/api.md).
   * Engines check each path with `assertPayloadPath` before writing it into SQL.
   */
  payload?: readonly PayloadFilter[];
  /** Created at or after / before these times (ms). */
  createdAfter?: number;
  createdBefore?: number;
  /** Keyset cursor: return jobs with id < this (newest first). */
  before?: string;
  limit: number;
}

/** A job a debounced or batched event went into; `merged`: an earlier event had opened it. */
export interface EventMerge {
  job: JobRow;
  kind: MergeKind;
  merged: boolean;
}

export interface QueueStats {
  queue: string;
  counts: Record<JobState, number>;
  /** runAt of the oldest queued job (ms), or null when none is queued. */
  oldestQueuedAt: number | null;
}

export interface JobReads extends StoreRole {
  getJob(id: string): Promise<JobRow | null>;
  getAttempts(jobId: string): Promise<AttemptRow[]>;
  listJobs(filter: JobFilter): Promise<JobRow[]>;
  getEvent(id: string): Promise<EventRow | null>;
  /** The debounce/batch jobs an event was merged into (core/trigger-control.ts), oldest first. */
  eventMerges(eventId: string): Promise<EventMerge[]>;
  queueStats(): Promise<QueueStats[]>;
  /**
   * Of `handlers`, those with at least one queued job (due and waiting for a
   * lease). The fallback poll asks this and wakes only those handlers, so a
   * poll that finds nothing takes no lease and leaves idle lanes idle (an
   * enqueue into an idle lane is then still leased by its own insert). One
   * index probe per handler, never a scan of the backlog.
   */
  handlersWithQueuedJobs(handlers: readonly string[]): Promise<string[]>;
  /**
   * Make sure an expression index serves `listJobs` payload filters on each
   * of these fields (`search.payloadIndexes`); builds the missing ones without
   * blocking writers where the engine can (PostgreSQL: CONCURRENTLY). Indexes
   * of fields no longer listed are left alone. Resolves to the names built.
   */
  ensurePayloadIndexes(paths: ReadonlyArray<readonly string[]>): Promise<string[]>;
}
