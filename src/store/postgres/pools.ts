/**
 * The engine's three connection pools and their combined numbers for metrics.
 *
 * `general` carries everything off the hot path. The hot path has its own
 * small pools, whose sessions run prepared statements on generic plans:
 * planning the lease statement costs several times what executing it does,
 * and PostgreSQL's plan cache would keep re-planning it (its generic estimate
 * looks worse than it runs). Only statements written to have a good generic
 * plan run there.
 *
 * `hot` carries completions and plain enqueues (durable commits, one batch
 * statement of each in flight: HOT_POOL_MAX). The enqueue statement costs
 * PostgreSQL ~1.5 ms to plan and ~0.5 ms to run for a few jobs, and in auto
 * mode the plan cache re-plans it every time. `lease` carries leases, reaps
 * and dead-node reclaims with asynchronous commit: their loss in a server
 * crash only puts jobs back where they were (a lost lease means the job runs
 * again, which at-least-once already allows; a lost reclaim is redone by the
 * next pass), and a completion's durable commit flushes the lease before it
 * anyway. Intake and completions never use it: what was acknowledged stays
 * acknowledged. `marks` is one connection with the lease pool's settings,
 * held for good by the start marks in pipeline mode (start-batch.ts,
 * pipelined.ts).
 */
import pg from 'pg';
import { clientConfig, type ConnectionSettings } from './connection.js';

/** Connections in each of the hot path's pools, besides `poolMax`. */
const HOT_POOL_MAX = 2;

export interface EnginePools {
  general: pg.Pool;
  hot: pg.Pool;
  lease: pg.Pool;
  /** One pipelined connection for start marks (pipelined.ts), with the lease pool's settings. */
  marks: pg.Pool;
}

export function openPools(connection: ConnectionSettings, poolMax: number): EnginePools {
  return {
    general: new pg.Pool({ ...clientConfig(connection), max: poolMax, idleTimeoutMillis: 30_000 }),
    hot: new pg.Pool({ ...clientConfig(connection, { genericPlans: true }), max: HOT_POOL_MAX, idleTimeoutMillis: 30_000 }),
    lease: new pg.Pool({ ...clientConfig(connection, { genericPlans: true, asyncCommit: true }), max: HOT_POOL_MAX, idleTimeoutMillis: 30_000 }),
    marks: new pg.Pool({ ...clientConfig(connection, { genericPlans: true, asyncCommit: true }), pipeline: true, max: 1 }),
  };
}

/**
 * Connections of all pools, their limit, and callers waiting for one.
 * `waiting` counts only pools without an idle connection: pg-pool queues
 * every checkout while an idle client exists and hands it over on the next
 * tick, so a scrape that itself queries the store (queue depth) saw its own
 * checkouts as "waiting" on an idle node.
 * `marks` is counted by its own state, not its pool's: it holds its one
 * connection for good (pipelined.ts), in use only while a mark is out.
 */
export function poolStats(pools: readonly pg.Pool[], marks: 'none' | 'idle' | 'busy'): { total: number; idle: number; waiting: number; max: number } {
  return {
    total: pools.reduce((n, p) => n + p.totalCount, 0) + (marks === 'none' ? 0 : 1),
    idle: pools.reduce((n, p) => n + p.idleCount, 0) + (marks === 'idle' ? 1 : 0),
    waiting: pools.reduce((n, p) => n + (p.idleCount > 0 ? 0 : p.waitingCount), 0),
    max: pools.reduce((n, p) => n + (p.options.max ?? 10), 0) + 1,
  };
}
