/**
 * Debounce, throttle and batch in the PostgreSQL ingest transaction (the
 * decisions: core/trigger-control.ts; the tables: 0007_trigger_controls.sql).
 *
 * Concurrency: the transaction first upserts the row of every group its
 * events touch, in key order, which locks them (`ON CONFLICT DO UPDATE`
 * waits for a concurrent insert of the same key and then locks the row), so
 * two nodes' events of one group are applied one transaction after the
 * other: each event lands in exactly one job, and the group never has two
 * open jobs. The open job's row is locked too (`FOR UPDATE OF j`): when the
 * stager has just queued it, the lock waits and the re-checked join drops it,
 * so the event opens a new job instead of joining one that already left.
 * A job that was ever leased (`lease_seq > 0`) is closed even when it is
 * `scheduled` again (a retry waiting out its backoff): events never join a
 * job that has started.
 */
import type pg from 'pg';
import { planMerge, throttleIntervalMs, type MergeKind, type OpenMerge } from '../../core/trigger-control.js';
import type { EventRow, NewJob } from '../../core/types.js';
import type { EventMerge } from '../engine.js';
import type { TriggerOutcome } from '../roles/job-store.js';
import type { IntakeEffects } from './intake.js';
import { toJobRow, type RawJob } from './rows.js';

const LOCK_GROUPS = `
  INSERT INTO trigger_groups (group_key, updated_at)
  SELECT k, $2 FROM unnest($1::text[]) AS k ORDER BY k
  ON CONFLICT (group_key) DO UPDATE SET updated_at = excluded.updated_at`;

/** GCRA without burst: the slot is max(now, tat); the next one an interval later. $1 key, $2 now, $3 interval. */
const TAKE_SLOT = `
  UPDATE trigger_groups SET tat = GREATEST(coalesce(tat, 0), $2) + $3, updated_at = $2
  WHERE group_key = $1 RETURNING tat - $3 AS run_at`;

const OPEN_OF = `
  SELECT g.open_job, g.open_until AS until, g.open_count AS count, j.payload::text AS "payloadText", j.run_at AS "runAt"
  FROM trigger_groups g JOIN jobs j ON j.id = g.open_job AND j.state = 'scheduled' AND j.lease_seq = 0
  WHERE g.group_key = $1
  FOR UPDATE OF j`;

const SET_OPEN = 'UPDATE trigger_groups SET open_job = $2, open_until = $3, open_count = $4, updated_at = $5 WHERE group_key = $1';

/** $1 id, $2 payload, $3 event id (null: keep), $4 run_at, $5 due, $6 now. The row comes back without its payload. */
const MERGE_INTO = `
  UPDATE jobs SET payload = $2::json, event_id = coalesce($3, event_id), run_at = $4,
    state = CASE WHEN $5 THEN 'queued' ELSE state END, updated_at = $6
  WHERE id = $1 RETURNING to_jsonb(jobs.*) - 'payload' AS row`;

const CLOSE = `
  UPDATE jobs SET state = 'queued', run_at = LEAST(run_at, $2), updated_at = $2
  WHERE id = $1 AND state = 'scheduled' RETURNING queue, handler`;

const RECORD_MERGE = 'INSERT INTO event_merges (event_id, job_id, kind, merged, at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING';

const PRUNE_MERGES = 'DELETE FROM event_merges WHERE ctid IN (SELECT ctid FROM event_merges WHERE at < $1 LIMIT $2)';

/** A concurrent ingest that locked the group first moves updated_at on; the DELETE's re-check then skips the row. */
const PRUNE_GROUPS = `
  DELETE FROM trigger_groups WHERE group_key IN (
    SELECT g.group_key FROM trigger_groups g
    WHERE g.updated_at < $1 AND coalesce(g.tat, 0) < $2
      AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = g.open_job AND j.state = 'scheduled' AND j.lease_seq = 0)
    LIMIT $3)
  AND updated_at < $1`;

const MERGES_OF_EVENT = `
  SELECT m.kind AS m_kind, m.merged AS m_merged, j.* FROM event_merges m JOIN jobs j ON j.id = m.job_id
  WHERE m.event_id = $1 ORDER BY j.id`;

interface OpenRow extends OpenMerge {
  open_job: number;
}

/** Lock the groups of these controlled jobs, in key order (see the file comment). */
export async function lockGroups(client: pg.PoolClient, jobs: readonly NewJob[], now: number): Promise<void> {
  const keys = [...new Set(jobs.map((j) => j.control!.groupKey))].sort();
  if (keys.length > 0) await client.query(LOCK_GROUPS, [keys, now]);
}

/** A throttled job's run_at: its group's next free slot (the group is locked). */
export async function throttleSlot(client: pg.PoolClient, job: NewJob, now: number): Promise<number> {
  const { control, groupKey } = job.control!;
  if (control.kind !== 'throttle') throw new Error('throttleSlot: not a throttle');
  const { rows } = await client.query<{ run_at: number }>(TAKE_SLOT, [groupKey, now, throttleIntervalMs(control)]);
  return Math.max(now, rows[0]!.run_at);
}

/**
 * Merge one debounce/batch job of `event` into its group's open job, or open
 * one (`insert`: the caller's job insert, so depth counting stays in one place).
 */
export async function mergeControlled(
  client: pg.PoolClient,
  job: NewJob,
  event: EventRow,
  now: number,
  effects: IntakeEffects,
  insert: (job: NewJob) => Promise<RawJob>,
): Promise<{ raw: RawJob; outcome: TriggerOutcome }> {
  const { control, groupKey, maxPayloadBytes } = job.control!;
  const kind = control.kind as MergeKind;
  const open = (await client.query<OpenRow>(OPEN_OF, [groupKey])).rows[0] ?? null;
  const plan = planMerge(control, open, event, job.payload, now, maxPayloadBytes);
  if (plan.op === 'update') {
    const { rows } = await client.query<{ row: Omit<RawJob, 'payload'> }>(MERGE_INTO, [open!.open_job, plan.payloadText, kind === 'debounce' ? event.id : null, plan.runAt, plan.due, now]);
    // Not parsed back: a batch's payload grows with every event (see TriggerOutcome).
    const raw: RawJob = { ...rows[0]!.row, payload: null };
    if (plan.due) wake(effects, raw.queue, raw.handler);
    await client.query(SET_OPEN, [groupKey, plan.due ? null : raw.id, open!.until, plan.count, now]);
    await client.query(RECORD_MERGE, [event.id, raw.id, kind, true, event.receivedAt]);
    return { raw, outcome: { jobId: String(raw.id), handler: raw.handler, kind, merged: true, delayedMs: 0 } };
  }
  if (plan.closeOpen && open) {
    const { rows } = await client.query<{ queue: string; handler: string }>(CLOSE, [open.open_job, now]);
    if (rows[0]) wake(effects, rows[0].queue, rows[0].handler);
  }
  const raw = await insert({ ...job, payload: JSON.parse(plan.payloadText) as unknown, runAt: plan.due ? now : plan.runAt });
  await client.query(SET_OPEN, [groupKey, plan.due ? null : raw.id, plan.until, 1, now]);
  await client.query(RECORD_MERGE, [event.id, raw.id, kind, false, event.receivedAt]);
  return { raw, outcome: { jobId: String(raw.id), handler: raw.handler, kind, merged: false, delayedMs: 0 } };
}

/**
 * A job queued without a new row: other nodes are notified only for queues
 * in `created`/`resumed` (finishIntake), so count it as a resumption of 0.
 */
function wake(effects: IntakeEffects, queue: string, handler: string): void {
  effects.woken.add(queue, handler);
  effects.resumed.set(queue, effects.resumed.get(queue) ?? 0);
}

/**
 * Forget merge records as old as the events retention drops, and groups idle
 * that long with nothing open and no throttle slot ahead (they hold nothing).
 */
export async function pruneTriggerGroups(client: pg.PoolClient, eventsBefore: number, now: number, limit: number): Promise<void> {
  await client.query(PRUNE_MERGES, [eventsBefore, limit]);
  await client.query(PRUNE_GROUPS, [eventsBefore, now, limit]);
}

/** The debounce/batch jobs an event went into. */
export async function eventMerges(db: pg.Pool | pg.PoolClient, eventId: string): Promise<EventMerge[]> {
  const rows = await eventMergeRows(db, eventId);
  return rows.map((raw) => ({ job: toJobRow(raw), kind: raw.m_kind, merged: raw.m_merged }));
}

export async function eventMergeRows(db: pg.Pool | pg.PoolClient, eventId: string): Promise<Array<RawJob & { m_kind: MergeKind; m_merged: boolean }>> {
  return (await db.query<RawJob & { m_kind: MergeKind; m_merged: boolean }>(MERGES_OF_EVENT, [eventId])).rows;
}
