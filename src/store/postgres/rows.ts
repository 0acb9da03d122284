/**
 * PostgreSQL rows: bigint parsed to number and json parsed by the driver (see
 * `connection.ts`); the mapping itself is the engines' shared one (`../rows.ts`).
 */
import type { ApiKeyRow, EventRow, JobRow, LeasedJob } from '../../core/types.js';
import type { NodeRow } from '../engine.js';
import { mapApiKeyRow, mapEventRow, mapJobRow, type ApiKeyColumns, type AttemptColumns, type EventColumns, type JobColumns } from '../rows.js';

export { parseJobId, toAttemptRow, toJson, toQueueStats } from '../rows.js';

export interface RawJob extends JobColumns<unknown> {
  leased_at: number | null;
}

/** Columns a lease leaves out: the call set them (`LeaseCall`). */
type KnownToTheLease = 'state' | 'worker_id' | 'lease_key_id' | 'updated_at' | 'leased_at';

/** A leased job row (lease.ts `LEASED_COLUMNS`) with its event's columns joined in (`e_*`, null without an event). */
export interface RawLeased extends Omit<RawJob, KnownToTheLease> {
  e_name: string | null;
  e_data: unknown;
  e_tenant: string | null;
  e_received_at: number | null;
  /** The fast shape marked it started (`LeaseRequest.start`); absent from the keyed shape, which marks none. */
  started_now?: boolean;
}

/** What the lease call itself set on every row it took. */
export interface LeaseFacts {
  worker: string;
  keyId: string | null;
  now: number;
}

export type RawEvent = EventColumns<unknown>;
export type RawAttempt = AttemptColumns;
export type RawApiKey = ApiKeyColumns<string[]>;

export interface RawNode {
  node_id: string;
  incarnation: string;
  started_at: number;
  heartbeat_at: number;
}

const asIs = <T>(value: T): T => value;

export function toJobRow(raw: RawJob): JobRow {
  return mapJobRow(raw, asIs);
}

export function toLeasedJob(raw: RawLeased, lease: LeaseFacts): LeasedJob {
  const event: EventRow | null =
    raw.event_id === null || raw.e_name === null
      ? null
      : { id: raw.event_id, name: raw.e_name, data: raw.e_data, tenant: raw.e_tenant, receivedAt: raw.e_received_at ?? 0 };
  // The row is ours (fresh from the driver): completing it in place saves a copy per job.
  const full = raw as RawLeased & Pick<RawJob, KnownToTheLease>;
  full.state = 'running';
  full.worker_id = lease.worker;
  full.lease_key_id = lease.keyId;
  full.updated_at = lease.now;
  full.leased_at = lease.now;
  // Completed in place too (the job row is fresh): spreading it into a new object copied ~25 fields per leased job.
  const job = toJobRow(full) as LeasedJob;
  job.leaseToken = raw.lease_token ?? '';
  job.leaseExpiresAt = raw.lease_expires_at ?? 0;
  job.event = event;
  return job;
}

export function toEventRow(raw: RawEvent): EventRow {
  return mapEventRow(raw, asIs);
}

export function toApiKeyRow(raw: RawApiKey): ApiKeyRow {
  return mapApiKeyRow(raw, asIs);
}

export function toNodeRow(raw: RawNode): NodeRow {
  return { nodeId: raw.node_id, incarnation: raw.incarnation, startedAt: raw.started_at, heartbeatAt: raw.heartbeat_at };
}
