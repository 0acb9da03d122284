/**
 * The texts of the job inserts (intake.ts runs them): the keyed insert, and
 * the plain enqueue's one statement in the shape each call needs. Each part
 * is in a text only when the statement needs it: a part left in costs its
 * executor set-up and per-row work even when it does nothing
 * (docs/benchmarks.md "Intake: the statement's parts").
 */

/**
 * A job leased by its own insert (`EnqueueOptions.lease`) is written as the
 * lease's fast shape leaves a job it marks started (lease.ts): running,
 * attempt 1, `started_seq = lease_seq`, its own random token. `until`: the
 * placeholder of the jobs' lease expiries (null for a job not leased),
 * `worker` and `call` the worker's and the call's.
 */
const LEASE_COLUMNS = ', attempts, lease_seq, started_seq, lease_token, lease_call, lease_expires_at, worker_id, leased_at';
const leaseValues = ({ worker, call }: LeasePlaceholders) => `,
         CASE WHEN t.lease_until IS NULL THEN 0 ELSE 1 END, CASE WHEN t.lease_until IS NULL THEN 0 ELSE 1 END,
         CASE WHEN t.lease_until IS NULL THEN 0 ELSE 1 END, CASE WHEN t.lease_until IS NOT NULL THEN gen_random_uuid()::text END,
         CASE WHEN t.lease_until IS NOT NULL THEN ${call}::text END, t.lease_until,
         CASE WHEN t.lease_until IS NOT NULL THEN ${worker}::text END, CASE WHEN t.lease_until IS NOT NULL THEN $12::bigint END`;

interface LeasePlaceholders {
  until: string;
  worker: string;
  call: string;
}

/**
 * What one job insert's text holds beyond the plain columns, each only where
 * it is needed (a part left in costs its executor set-up and per-row work
 * even when it does nothing: docs/benchmarks.md "Intake: the statement's
 * parts"). `fair`: the placeholder of the fair queues, when any job of the
 * statement is in one; `lease`: the intake lease's, when a job is leased;
 * `keyed`: some job has an idempotency key (ON CONFLICT, whose speculative
 * insertion writes one WAL record more per row).
 */
interface InsertShape {
  fair: string | null;
  lease: LeasePlaceholders | null;
  keyed: boolean;
}

/**
 * $1..$14 the jobs' columns and the time (jobColumns). Each column is an
 * array (the payloads one JSON array), zipped into rows in input order
 * (`ord`) by set-returning functions in the select list, which run in
 * lockstep (a shorter array, such as a column of nulls sent as '{}', is
 * padded with nulls): unlike ROWS FROM, which copies each function's output
 * into a tuplestore of its own first, they hand their rows straight up
 * (docs/benchmarks.md "Intake: the statement's parts"). A job in a
 * fair queue gets its tenant's next turn (docs/configuration.md "Fairness
 * across tenants"): `max(head, tail) + n`, head = the queue's smallest queued
 * turn (with nothing queued, its largest scheduled one: sqlite/intake.ts
 * fairTag says why), tail = the tenant's largest waiting turn (a null tenant is a tenant
 * of its own), n = its place among this statement's jobs of that tenant and
 * queue, so a batch lines a tenant's jobs up one turn apart as single inserts
 * would. Head and tail are read once per (queue, tenant) of the statement
 * (`turns`), not per row. Two transactions inserting for one tenant at once
 * read the same tail and may give their jobs equal turns: those jobs then
 * share a turn (ordered by priority, age and id), a small and temporary
 * unfairness accepted rather than serialising every insert into a fair queue
 * on a lock. Without a fair queue every turn is 0.
 *
 * `returning`: only what the database chose and the caller needs; the rows
 * themselves are built from the input (intake-rows.ts says why).
 */
const insertJobsSql = (returning: string, { fair, lease, keyed }: InsertShape) => `
  INSERT INTO jobs (handler, queue, state, payload, event_id, priority, run_at, max_attempts,
                    idempotency_key, concurrency_key, concurrency_limit, traceparent, tenant, priority_ms,
                    fair_tag, created_at, updated_at${lease ? LEASE_COLUMNS : ''})
  SELECT handler, t.queue, CASE ${lease ? "WHEN t.lease_until IS NOT NULL THEN 'running' " : ''}WHEN run_at <= $12 THEN 'queued' ELSE 'scheduled' END, payload, event_id,
         priority, run_at, max_attempts, idempotency_key, concurrency_key, concurrency_limit, traceparent, t.tenant, priority_ms,
         ${fair ? 'CASE WHEN turns.base IS NULL THEN 0 ELSE turns.base + row_number() OVER (PARTITION BY t.queue, t.tenant ORDER BY t.ord) END' : '0'},
         $12, $12${lease ? leaseValues(lease) : ''}
  FROM (SELECT unnest($1::text[]) AS handler, unnest($2::text[]) AS queue, json_array_elements($3::json) AS payload,
          unnest($4::text[]) AS event_id, unnest($5::int[]) AS priority, unnest($6::bigint[]) AS run_at, unnest($7::int[]) AS max_attempts,
          unnest($8::text[]) AS idempotency_key, unnest($9::text[]) AS concurrency_key, unnest($10::int[]) AS concurrency_limit,
          unnest($11::text[]) AS traceparent, unnest($13::text[]) AS tenant, unnest($14::bigint[]) AS priority_ms,
          ${lease ? `unnest(${lease.until}::bigint[]) AS lease_until, ` : ''}generate_series(1, cardinality($1::text[])) AS ord) AS t${fair ? fairTurns(fair) : ''}
  ORDER BY ord${keyed ? '\n  ON CONFLICT (handler, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING' : ''}
  RETURNING ${returning}`;

/** The fair queues' turns, per (queue, tenant) of the statement (insertJobsSql). */
const fairTurns = (fairQueues: string) => `
  LEFT JOIN (
    SELECT g.queue, g.tenant, greatest(
      coalesce(
        (SELECT h.fair_tag FROM jobs h WHERE h.queue = g.queue AND h.state = 'queued' AND h.fair_tag > 0 ORDER BY h.fair_tag LIMIT 1),
        (SELECT h.fair_tag FROM jobs h WHERE h.queue = g.queue AND h.state = 'scheduled' AND h.fair_tag > 0 ORDER BY h.fair_tag DESC LIMIT 1)),
      CASE WHEN g.tenant IS NULL
        THEN (SELECT f.fair_tag FROM jobs f WHERE f.queue = g.queue AND f.tenant IS NULL
                AND f.state IN ('queued', 'scheduled') AND f.fair_tag > 0 ORDER BY f.fair_tag DESC LIMIT 1)
        ELSE (SELECT f.fair_tag FROM jobs f WHERE f.queue = g.queue AND f.tenant = g.tenant
                AND f.state IN ('queued', 'scheduled') AND f.fair_tag > 0 ORDER BY f.fair_tag DESC LIMIT 1)
      END,
      0) AS base
    FROM (SELECT DISTINCT u.queue, u.tenant FROM unnest($2::text[], $13::text[]) AS u(queue, tenant)
          WHERE u.queue = ANY(${fairQueues}::text[])) AS g
  ) AS turns ON turns.queue = t.queue AND turns.tenant IS NOT DISTINCT FROM t.tenant`;

/** The keyed insert's answer: keyed rows are matched to their jobs by (handler, key), the others by id order. */
export const INSERT_JOBS = insertJobsSql('id, handler, idempotency_key, fair_tag', { fair: '$15', lease: null, keyed: true });

/** Unfinished jobs of a counted queue: 'added' (just locked and updated) minus 'finished' (read without a lock). */
export const DEPTH_OF = (added: string) =>
  `${added}.n - coalesce((SELECT f.n FROM queue_counts f WHERE f.queue = ${added}.queue AND f.kind = 'finished'), 0)`;

/** Which parts a plain enqueue's statement needs (`plainStatement`). */
interface PlainShape {
  /** A job of the statement is in a fair queue (QueueLimit.fairness). */
  fair: boolean;
  /** A queue of the statement has a depth limit. */
  limited: boolean;
  /** A job is leased by its insert. */
  leasing: boolean;
}

/**
 * Jobs without idempotency keys, in ONE statement (no BEGIN/COMMIT round
 * trips, and the queue counter row is locked only from its update to the
 * commit): insert, count them into their queues, refuse through
 * \`queue_full()\` (which aborts the statement) when a limited queue would
 * overflow, and notify other nodes. Each part is in the text only when the
 * statement needs it (`PlainShape`; one prepared statement per shape), so
 * the common statement, no fair queue and no lease, carries neither the
 * turns' join nor the lease's columns. The counter is always there: a
 * queue's depth is `added - finished`, and a limit set later must find every
 * job counted.
 *
 * Placeholders after $14, in this order, each only with its part: the fair
 * queues; the limited queues and their limits; the channel and payload ('' =
 * none); the lease expiries, worker and call. `enqueuePlain` sends them so.
 *
 * The answer is one row: the new ids as text, in id order, which is input
 * order (the insert takes the rows in `ord` order and identity values rise
 * in insertion order), and the leased jobs' tokens likewise. One row, not one
 * per job: the driver's cost is per row and per column.
 */
function plainStatement(shape: PlainShape): { name: string; text: string } {
  let n = 14;
  const next = () => `$${++n}`;
  const fair = shape.fair ? next() : null;
  const limits = shape.limited ? { queues: next(), max: next() } : null;
  const channel = next();
  const payload = next();
  const lease = shape.leasing ? { until: next(), worker: next(), call: next() } : null;
  const text = `
  WITH inserted AS (${insertJobsSql(`id, queue${lease ? ', lease_token' : ''}`, { fair, lease, keyed: false })}
  ), added AS (
    INSERT INTO queue_counts (queue, kind, n)
    SELECT queue, 'added', count(*) FROM inserted GROUP BY queue ORDER BY queue
    ON CONFLICT (queue, kind) DO UPDATE SET n = queue_counts.n + excluded.n
    RETURNING queue, n
  )${
    limits
      ? `, refused AS (
    SELECT queue_full(added.queue, l.max_depth) FROM added
    JOIN unnest(${limits.queues}::text[], ${limits.max}::bigint[]) AS l(queue, max_depth) ON l.queue = added.queue
    WHERE ${DEPTH_OF('added')} > l.max_depth
  )`
      : ''
  }
  SELECT string_agg(id::text, ',' ORDER BY id) AS ids${lease ? `, string_agg(coalesce(lease_token, ''), ',' ORDER BY id) AS tokens` : ''},
    ${limits ? '(SELECT count(*) FROM refused) AS refused, ' : ''}(SELECT count(*) FROM (SELECT pg_notify(${channel}, ${payload}) WHERE ${payload} <> '') AS n) AS notified
  FROM inserted`;
  const name = `drover_enqueue_plain${shape.fair ? '_fair' : ''}${shape.limited ? '_limited' : ''}${shape.leasing ? '_leasing' : ''}`;
  return { name, text };
}

/** The statements by shape (`plainStatement`), built on first use. */
const plainStatements = new Map<number, { name: string; text: string }>();

export function plainStatementFor(shape: PlainShape): { name: string; text: string } {
  const key = (shape.fair ? 1 : 0) | (shape.limited ? 2 : 0) | (shape.leasing ? 4 : 0);
  let statement = plainStatements.get(key);
  if (!statement) plainStatements.set(key, (statement = plainStatement(shape)));
  return statement;
}
