/**
 * Ingest: events in, and the jobs their triggers fan out to, in the caller's
 * intake transaction (intake-transaction.ts). A new event's plain and
 * throttled jobs go in one insert (intake.ts `insertJobs`), its debounced and
 * batched ones one by one into their groups (trigger-groups.ts).
 */
import type pg from 'pg';
import type { NewJob } from '../../core/types.js';
import type { EnqueueOptions, IngestItem } from '../engine.js';
import type { ResolvedWait } from '../roles/durable-store.js';
import type { TriggerOutcome } from '../roles/job-store.js';
import { arrayParam } from './connection.js';
import { lockOrder, resolveByEvents, sharedNameLocks } from './durable.js';
import { insertJobs, type IntakeEffects } from './intake.js';
import { insertedEvent, storedText } from './intake-rows.js';
import { toEventRow, toJson, type RawEvent, type RawJob } from './rows.js';
import { eventMergeRows, lockGroups, mergeControlled, throttleSlot } from './trigger-groups.js';

export interface IngestedItem {
  event: RawEvent;
  jobs: RawJob[];
  created: boolean;
  resolvedWaits?: ResolvedWait[];
  controls?: TriggerOutcome[];
}

/**
 * Insert events (each id once, also within the call) and the jobs of the new
 * ones, and resolve the pending waits the new events satisfy. The insert
 * takes the events' names' shared wait locks (durable.ts says why), so the
 * wait lookup after it sees every wait a suspend committed before.
 */
export async function ingestItems(
  client: pg.PoolClient,
  items: readonly IngestItem[],
  now: number,
  effects: IntakeEffects,
  options?: EnqueueOptions,
): Promise<IngestedItem[]> {
  const firstOfId = new Map<string, number>();
  items.forEach((item, i) => {
    if (!firstOfId.has(item.event.id)) firstOfId.set(item.event.id, i);
  });
  const unique = [...firstOfId.values()].map((i) => items[i]!.event);
  const { rows: insertedIds } = await client.query<{ id: string }>(
    `WITH locks AS (${sharedNameLocks('$6')})
     INSERT INTO events (id, name, data, tenant, received_at)
     SELECT id, name, data::json, tenant, $5 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS t(id, name, data, tenant), locks
     ON CONFLICT (id) DO NOTHING
     RETURNING id`,
    [
      arrayParam(unique.map((e) => e.id)),
      arrayParam(unique.map((e) => e.name)),
      arrayParam(unique.map((e) => toJson(e.data))),
      arrayParam(unique.map((e) => e.tenant)),
      now,
      lockOrder(unique.map((e) => e.name)),
    ],
  );
  // The new events' rows are built from the input, as jobs' are (intake-rows.ts).
  const byId = new Map(unique.map((e) => [storedText(e.id), e]));
  const inserted = insertedIds.map(({ id }) => insertedEvent(byId.get(id)!, now));
  const created = new Map(inserted.map((raw) => [raw.id, raw]));
  const known = unique.filter((e) => !created.has(e.id)).map((e) => e.id);
  const existing = new Map<string, IngestedItem>();
  if (known.length > 0) {
    const { rows: events } = await client.query<RawEvent>('SELECT * FROM events WHERE id = ANY($1::text[])', [known]);
    const { rows: jobs } = await client.query<RawJob>('SELECT * FROM jobs WHERE event_id = ANY($1::text[]) ORDER BY id', [known]);
    for (const event of events) {
      const own = jobs.filter((j) => j.event_id === event.id);
      // Jobs it was merged into: a debounced job's event_id names the latest event only.
      const merged = (await eventMergeRows(client, event.id)).filter((m) => !own.some((j) => j.id === m.id));
      existing.set(event.id, { event, jobs: [...own, ...merged], created: false });
    }
  }

  // The new events' fan-out jobs: plain and throttled ones in one insert,
  // debounced and batched ones one by one into their groups (trigger-groups.ts).
  const newJobs: NewJob[] = [];
  const owner: number[] = [];
  const throttled = new Map<number, number>(); // index in newJobs → delay past the event
  const merges: Array<{ job: NewJob; owner: number }> = [];
  const fresh = [...firstOfId].filter(([id]) => created.has(id));
  await lockGroups(client, fresh.flatMap(([, i]) => items[i]!.jobs.filter((j) => j.control)), now);
  for (const [id, i] of fresh) {
    for (const job of items[i]!.jobs) {
      const withEvent = { ...job, eventId: id };
      if (job.control && job.control.control.kind !== 'throttle') {
        merges.push({ job: withEvent, owner: i });
        continue;
      }
      if (job.control) {
        withEvent.runAt = await throttleSlot(client, job, now);
        throttled.set(newJobs.length, withEvent.runAt - now);
      }
      newJobs.push(withEvent);
      owner.push(i);
    }
  }
  const jobsOf = new Map<number, RawJob[]>();
  const controlsOf = new Map<number, TriggerOutcome[]>();
  const add = <T>(map: Map<number, T[]>, i: number, value: T) => map.set(i, [...(map.get(i) ?? []), value]);
  if (newJobs.length > 0) {
    const results = await insertJobs(client, newJobs, now, effects, options);
    results.forEach((result, n) => {
      add(jobsOf, owner[n]!, result.raw);
      const delayedMs = throttled.get(n);
      if (delayedMs !== undefined) add(controlsOf, owner[n]!, { jobId: String(result.raw.id), handler: result.raw.handler, kind: 'throttle', merged: false, delayedMs });
    });
  }
  for (const merge of merges) {
    const event = toEventRow(created.get(merge.job.eventId!)!);
    const landed = await mergeControlled(client, merge.job, event, now, effects, async (job) => (await insertJobs(client, [job], now, effects))[0]!.raw);
    add(controlsOf, merge.owner, landed.outcome);
    add(jobsOf, merge.owner, landed.raw);
  }

  const resolved = await resolveByEvents(client, inserted.map(toEventRow), now, effects);

  return items.map((item, i) => {
    const first = firstOfId.get(item.event.id)!;
    const raw = created.get(item.event.id);
    const waits = resolved.get(item.event.id);
    if (raw && first === i) {
      const controls = controlsOf.get(i);
      return { event: raw, jobs: jobsOf.get(i) ?? [], created: true, ...(waits ? { resolvedWaits: waits } : {}), ...(controls ? { controls } : {}) };
    }
    if (raw) return { event: raw, jobs: jobsOf.get(first) ?? [], created: false };
    const known = existing.get(item.event.id);
    if (!known) throw new Error(`event ${item.event.id} vanished during ingest`);
    return known;
  });
}
