/**
 * Taking jobs back from holders that are gone: expired leases (the reaper), a
 * previous incarnation of this node (at start), and nodes that stopped
 * heartbeating (dead-node reclaim). Each is ONE statement: requeue the jobs
 * (or poison them once they have been reclaimed `poisonAfter` times, since a
 * job that keeps killing its worker would otherwise crash-loop the cluster),
 * write their attempt rows, and subtract poisoned jobs from the queue depth.
 * Only a lease whose handler had started (`started_seq = lease_seq`, see
 * start-batch.ts) counts as a crash; one leased ahead and never run goes back
 * unspent (attempt given back, attempt row `released`).
 */
import type pg from 'pg';
import type { AttemptOutcome } from '../../core/types.js';
import type { ReclaimedJob } from '../engine.js';

/** Most expired leases one reapExpired call reclaims, so it stays a short statement. */
export const REAP_BATCH = 1000;

/** The current lease's handler started (old column values: neither changes in the update). */
const STARTED = 'j.started_seq = j.lease_seq';

/**
 * The shared body. `targets` is a CTE yielding job ids and `expired_at` (when
 * the holder's claim lapsed, or NULL); parameters $1 now,
 * $2 poisonAfter, $3 attempt outcome come first. Old column values on the
 * right-hand side: `j.crashes + 1` is the new count. The ids go through
 * ARRAY(...) so the update is by primary key whatever the plan's estimates
 * (these statements run on generic plans).
 */
function reclaimSql(targets: string, extra = ''): string {
  return `
  WITH ${extra}targets AS (${targets}),
  reclaimed AS (
    UPDATE jobs j SET crashes = j.crashes + CASE WHEN ${STARTED} THEN 1 ELSE 0 END,
      attempts = CASE WHEN ${STARTED} THEN j.attempts ELSE greatest(j.attempts - 1, 0) END,
      state = CASE WHEN ${STARTED} AND j.crashes + 1 >= $2::bigint THEN 'dead' ELSE 'queued' END,
      dead_reason = CASE WHEN ${STARTED} AND j.crashes + 1 >= $2::bigint THEN 'poison' ELSE NULL END,
      finished_at = CASE WHEN ${STARTED} AND j.crashes + 1 >= $2::bigint THEN $1::bigint ELSE NULL END,
      updated_at = $1::bigint, lease_token = NULL, lease_expires_at = NULL
    WHERE j.id = ANY(ARRAY(SELECT id FROM targets)) AND j.state = 'running'
    RETURNING j.id, j.handler, j.queue, j.state, j.lease_seq, j.worker_id, j.leased_at, ${STARTED} AS started
  ), attempt AS (
    INSERT INTO attempts (job_id, attempt, worker_id, started_at, ended_at, outcome)
    SELECT id, lease_seq, coalesce(worker_id, ''), coalesce(leased_at, $1::bigint), $1::bigint,
      CASE WHEN started THEN $3::text ELSE 'released' END FROM reclaimed
  ), finished AS (
    SELECT queue, count(*) AS n FROM reclaimed WHERE state = 'dead' GROUP BY queue
  ), counted AS (
    INSERT INTO queue_counts (queue, kind, n) SELECT queue, 'finished', n FROM finished ORDER BY queue
    ON CONFLICT (queue, kind) DO UPDATE SET n = queue_counts.n + excluded.n
  )`;
}

/** The reclaimed rows with their `expired_at` (the update clears `lease_expires_at`, so it comes from `targets`). */
const RECLAIMED_ROWS = `SELECT r.id, r.handler, r.queue, r.state, r.started, t.expired_at
  FROM reclaimed r JOIN targets t ON t.id = r.id ORDER BY r.id`;

/** $4 limit. SKIP LOCKED: two reapers split the work instead of queueing on each other. */
const REAP = `${reclaimSql(`
    SELECT id, lease_expires_at AS expired_at FROM jobs WHERE state = 'running' AND lease_expires_at < $1
    ORDER BY lease_expires_at LIMIT $4 FOR UPDATE SKIP LOCKED`)}
  ${RECLAIMED_ROWS}`;

/** $4 worker id. Reads the running set through `jobs_running_lease` (no index by worker: migration 0010). */
export const RECLAIM_WORKER = `${reclaimSql(`SELECT id, NULL::bigint AS expired_at FROM jobs WHERE state = 'running' AND worker_id = $4`)}
  ${RECLAIMED_ROWS}`;

/** Every running job, whoever holds it (after a restore). */
const RECLAIM_ALL = `${reclaimSql(`SELECT id, NULL::bigint AS expired_at FROM jobs WHERE state = 'running'`)}
  ${RECLAIMED_ROWS}`;

/**
 * $4 heartbeat cutoff, $5 node id never to declare dead. Deleting the node
 * rows and requeueing their jobs is one statement, so a node is never gone
 * with its jobs still held, and two peers running this at once reclaim each
 * dead node once (the second finds its row deleted). A dead node's claim
 * lapsed at its last heartbeat plus the stale window ($1 - $4).
 */
export const RECLAIM_DEAD_NODES = `${reclaimSql(
  `SELECT j.id, d.heartbeat_at + ($1::bigint - $4::bigint) AS expired_at
    FROM jobs j JOIN dead d ON j.worker_id = d.node_id WHERE j.state = 'running'`,
  `dead AS (DELETE FROM nodes WHERE heartbeat_at < $4 AND node_id <> $5 RETURNING node_id, heartbeat_at),
  `,
)}
  SELECT (SELECT array_agg(node_id ORDER BY node_id) FROM dead) AS nodes, r.id, r.handler, r.queue, r.state, r.started, t.expired_at
  FROM (SELECT 1) AS one LEFT JOIN (reclaimed r JOIN targets t ON t.id = r.id) ON true
  ORDER BY r.id`;

interface RawReclaimed {
  id: number | null;
  handler: string;
  queue: string;
  state: 'queued' | 'dead';
  started: boolean;
  /** bigint: a string from pg unless a type parser is set. */
  expired_at: string | number | null;
}

function toReclaimed(rows: RawReclaimed[]): ReclaimedJob[] {
  return rows
    .filter((r) => r.id !== null)
    .map((r) => {
      const job: ReclaimedJob = { id: String(r.id), handler: r.handler, queue: r.queue, state: r.state, started: r.started };
      if (r.expired_at !== null) job.expiredAt = Number(r.expired_at);
      return job;
    });
}

type Outcome = Extract<AttemptOutcome, 'lease_expired' | 'crashed'>;

export async function reapExpired(db: pg.Pool, now: number, poisonAfter: number): Promise<ReclaimedJob[]> {
  const outcome: Outcome = 'lease_expired';
  const { rows } = await db.query<RawReclaimed>({ name: 'drover_reap', text: REAP, values: [now, poisonAfter, outcome, REAP_BATCH] });
  return toReclaimed(rows);
}

export async function reclaimWorker(db: pg.Pool, now: number, poisonAfter: number, workerId: string): Promise<ReclaimedJob[]> {
  const outcome: Outcome = 'crashed';
  const { rows } = await db.query<RawReclaimed>(RECLAIM_WORKER, [now, poisonAfter, outcome, workerId]);
  return toReclaimed(rows);
}

/** Never poisons: the holders did not crash, the store was restored under them. */
export async function reclaimAll(db: pg.Pool, now: number): Promise<ReclaimedJob[]> {
  const outcome: Outcome = 'crashed';
  const { rows } = await db.query<RawReclaimed>(RECLAIM_ALL, [now, Number.MAX_SAFE_INTEGER, outcome]);
  return toReclaimed(rows);
}

export async function reclaimDeadNodes(
  db: pg.Pool,
  now: number,
  poisonAfter: number,
  cutoff: number,
  exceptNodeId: string,
): Promise<{ nodes: string[]; jobs: ReclaimedJob[] }> {
  const outcome: Outcome = 'crashed';
  const { rows } = await db.query<RawReclaimed & { nodes: string[] | null }>({
    name: 'drover_reclaim_dead_nodes',
    text: RECLAIM_DEAD_NODES,
    values: [now, poisonAfter, outcome, cutoff, exceptNodeId],
  });
  return { nodes: rows[0]?.nodes ?? [], jobs: toReclaimed(rows) };
}
