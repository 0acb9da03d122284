/**
 * What the PostgreSQL engine's role parts share (postgres-engine.ts builds it
 * and wires them): the schema, the general pool and the lease pool, the
 * clock, the wakeups, the lease marks, and the engine's checked calls (a
 * closed store refuses, a failure becomes a store error). The engine's hot
 * path keeps these on its own fields and calls its helpers directly, not
 * through this.
 */
import type pg from 'pg';
import type { ReclaimedJob } from '../engine.js';
import { Woken } from '../woken.js';
import type { Query } from './connection.js';
import type { DurableWrite } from './maintenance.js';
import type { Wakeups } from './wakeups.js';

export type { RolePart } from '../roles/capabilities.js';

export interface EngineCore {
  readonly schema: string;
  /** The connection URL, for `pg_dump` (backup.ts). */
  readonly url: string;
  /** The general pool (pools.ts). */
  readonly pool: pg.Pool;
  /** The lease pool: reaps and dead-node reclaims run there (pools.ts says why). */
  readonly leasePool: pg.Pool;
  readonly clock: () => number;
  readonly wakeups: Wakeups;
  /** How long `registerNode` waits for a node id held by a process that just died. */
  readonly nodeLockWaitMs: number;
  /** Jobs the lease marked started (id → token), until their start() call: an op that ends the lease forgets it. */
  readonly markedByLease: Map<string, string>;
  /** One statement on the general pool, checked. */
  readonly query: Query;
  assertOpen(): void;
  /** `work`, refused on a closed store; its failure thrown as a store error naming `what`. */
  run<T>(what: string, work: () => Promise<T>): Promise<T>;
  /** A transaction that may queue jobs: other nodes told in it, this process's listeners after the commit. */
  readonly durableWrite: DurableWrite;
}

/** Reclaimed leases are over: their marks are forgotten and the queues they refilled woken. */
export function reclaimed(core: EngineCore, jobs: ReclaimedJob[]): ReclaimedJob[] {
  // A reclaimed lease's mark is gone with it: its start() must ask the store (and be refused).
  if (core.markedByLease.size > 0) for (const job of jobs) core.markedByLease.delete(job.id);
  const queued = jobs.filter((j) => j.state === 'queued');
  if (queued.length > 0) void core.wakeups.committed(Woken.of(queued.map((j) => j.queue), queued.map((j) => j.handler)));
  return jobs;
}
