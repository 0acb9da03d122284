/**
 * Debounce, throttle and batch in the SQLite ingest transaction (the
 * decisions: core/trigger-control.ts; the tables: 0008_trigger_controls.sql).
 * The single writer serialises every event, so a group's open job is read
 * and written without locks; an event that is accepted is in exactly one job.
 */
import type Database from 'better-sqlite3';
import { planMerge, throttleIntervalMs, type MergeKind, type OpenMerge } from '../../core/trigger-control.js';
import type { EventRow, JobRow, NewJob } from '../../core/types.js';
import type { EventMerge } from '../engine.js';
import type { TriggerOutcome } from '../roles/job-store.js';
import { insertJob, type IntakeContext } from './intake.js';
import { lazyStatements } from './lazy-statements.js';
import { toJobRow, type RawJob } from './rows.js';

interface OpenRow extends OpenMerge {
  open_job: number;
}

export type TriggerStatements = ReturnType<typeof prepareTriggerStatements>;

export function prepareTriggerStatements(db: Database.Database) {
  return lazyStatements(db, (p) => ({
    // A job that left `scheduled` (staged, cancelled), or that was ever leased (a
    // retry waiting out its backoff is `scheduled` again), is closed whatever open_job says.
    openOf: p<[string], OpenRow>(`
      SELECT g.open_job, g.open_until AS until, g.open_count AS count, j.payload AS "payloadText", j.run_at AS "runAt"
      FROM trigger_groups g JOIN jobs j ON j.id = g.open_job AND j.state = 'scheduled' AND j.lease_seq = 0
      WHERE g.group_key = ?`),
    setOpen: p<[string, number | null, number | null, number, number]>(`
      INSERT INTO trigger_groups (group_key, open_job, open_until, open_count, updated_at) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (group_key) DO UPDATE SET open_job = excluded.open_job, open_until = excluded.open_until,
        open_count = excluded.open_count, updated_at = excluded.updated_at`),
    mergeInto: p<{ id: number; payload: string; eventId: string | null; runAt: number; due: 0 | 1; now: number }, RawJob>(`
      UPDATE jobs SET payload = @payload, event_id = coalesce(@eventId, event_id), run_at = @runAt,
        state = CASE WHEN @due = 1 THEN 'queued' ELSE state END, updated_at = @now
      WHERE id = @id RETURNING *`),
    close: p<{ id: number; now: number }, { queue: string; handler: string }>(`
      UPDATE jobs SET state = 'queued', run_at = min(run_at, @now), updated_at = @now
      WHERE id = @id AND state = 'scheduled' RETURNING queue, handler`),
    // GCRA without burst: the slot is max(now, tat); the next one an interval later.
    takeSlot: p<{ key: string; now: number; interval: number }, { run_at: number }>(`
      INSERT INTO trigger_groups (group_key, tat, updated_at) VALUES (@key, @now + @interval, @now)
      ON CONFLICT (group_key) DO UPDATE SET tat = max(coalesce(tat, 0), @now) + @interval, updated_at = @now
      RETURNING tat - @interval AS run_at`),
    recordMerge: p<[string, number, MergeKind, 0 | 1, number]>('INSERT OR IGNORE INTO event_merges (event_id, job_id, kind, merged, at) VALUES (?, ?, ?, ?, ?)'),
    pruneMerges: p<[number, number]>('DELETE FROM event_merges WHERE rowid IN (SELECT rowid FROM event_merges WHERE at < ? LIMIT ?)'),
    pruneGroups: p<{ before: number; now: number; limit: number }>(`
      DELETE FROM trigger_groups WHERE group_key IN (
        SELECT g.group_key FROM trigger_groups g
        WHERE g.updated_at < @before AND coalesce(g.tat, 0) < @now
          AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = g.open_job AND j.state = 'scheduled' AND j.lease_seq = 0)
        LIMIT @limit)`),
    mergesOfEvent: p<[string], RawJob & { m_kind: MergeKind; m_merged: number }>(`
      SELECT m.kind AS m_kind, m.merged AS m_merged, j.* FROM event_merges m JOIN jobs j ON j.id = m.job_id
      WHERE m.event_id = ? ORDER BY j.id`),
  }));
}

/**
 * Insert, merge or pace one job of a controlled trigger for `event` (already
 * inserted in this transaction). Returns the job it landed in and what happened.
 */
export function ingestControlled(ctx: IntakeContext, t: TriggerStatements, job: NewJob, event: EventRow): { job: JobRow; outcome: TriggerOutcome } {
  const { control, groupKey, maxPayloadBytes } = job.control!;
  const now = ctx.now;
  if (control.kind === 'throttle') {
    const runAt = Math.max(now, t.takeSlot.get({ key: groupKey, now, interval: throttleIntervalMs(control) })!.run_at);
    const row = insertJob(ctx, { ...job, runAt }).job;
    return { job: row, outcome: outcome(row, 'throttle', false, runAt - now) };
  }
  const open = t.openOf.get(groupKey) ?? null;
  const plan = planMerge(control, open, event, job.payload, now, maxPayloadBytes);
  if (plan.op === 'update') {
    const raw = t.mergeInto.get({ id: open!.open_job, payload: plan.payloadText, eventId: control.kind === 'debounce' ? event.id : null, runAt: plan.runAt, due: plan.due ? 1 : 0, now })!;
    if (plan.due) ctx.own.woken.add(raw.queue, raw.handler);
    t.setOpen.run(groupKey, plan.due ? null : raw.id, open!.until, plan.count, now);
    t.recordMerge.run(event.id, raw.id, control.kind, 1, event.receivedAt);
    // Not parsed back: a batch's payload grows with every event (see TriggerOutcome).
    const row = toJobRow({ ...raw, payload: 'null' });
    return { job: row, outcome: outcome(row, control.kind, true, 0) };
  }
  if (plan.closeOpen && open) {
    const closed = t.close.get({ id: open.open_job, now });
    if (closed) ctx.own.woken.add(closed.queue, closed.handler);
  }
  const row = insertJob(ctx, { ...job, payload: JSON.parse(plan.payloadText) as unknown, runAt: plan.due ? now : plan.runAt }).job;
  t.setOpen.run(groupKey, plan.due ? null : Number(row.id), plan.until, 1, now);
  t.recordMerge.run(event.id, Number(row.id), control.kind, 0, event.receivedAt);
  return { job: row, outcome: outcome(row, control.kind, false, 0) };
}

/**
 * Forget merge records as old as the events retention drops, and groups idle
 * that long with nothing open and no throttle slot ahead (they hold nothing).
 */
export function pruneTriggerGroups(t: TriggerStatements, eventsBefore: number, now: number, limit: number): void {
  t.pruneMerges.run(eventsBefore, limit);
  t.pruneGroups.run({ before: eventsBefore, now, limit });
}

/** The debounce/batch jobs an event went into. */
export function eventMerges(t: TriggerStatements, eventId: string): EventMerge[] {
  return t.mergesOfEvent.all(eventId).map((raw) => ({ job: toJobRow(raw), kind: raw.m_kind, merged: raw.m_merged === 1 }));
}

function outcome(job: JobRow, kind: TriggerOutcome['kind'], merged: boolean, delayedMs: number): TriggerOutcome {
  return { jobId: job.id, handler: job.handler, kind, merged, delayedMs };
}
