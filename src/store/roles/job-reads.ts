/** Reads of jobs, attempts, events and queue depth: nothing here changes state. */
import type { AttemptRow, EventRow, JobRow, JobState } from '../../core/types.js';
import type { StoreRole } from './capabilities.js';

export interface JobFilter {
  state?: JobState;
  handler?: string;
  queue?: string;
  eventId?: string;
  /** Keyset cursor: return jobs with id < this (newest first). */
  before?: string;
  limit: number;
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
  queueStats(): Promise<QueueStats[]>;
}
