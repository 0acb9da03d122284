/**
 * Domain types shared by every layer. Pure data: no I/O, no classes.
 * Times are milliseconds since the Unix epoch; ids are strings on the wire.
 */

import type { JobControl } from './trigger-control.js';

/** Lifecycle of a job. See `job-state.ts` for the allowed transitions. */
export type JobState =
  | 'scheduled' // waiting for runAt (delayed, or backing off before a retry)
  | 'queued' // due, waiting for a worker
  | 'running' // leased by a worker
  | 'suspended' // a durable step is waiting (sleep, event, interrupt); holds no lease or slot
  | 'succeeded'
  | 'dead' // failed its last attempt, failed non-retryably, or poisoned
  | 'cancelled';

export const JOB_STATES: readonly JobState[] = ['scheduled', 'queued', 'running', 'suspended', 'succeeded', 'dead', 'cancelled'];
export const TERMINAL_STATES: readonly JobState[] = ['succeeded', 'dead', 'cancelled'];

/** How one attempt (one lease) ended. */
export type AttemptOutcome =
  | 'running'
  | 'succeeded'
  | 'failed' // the handler threw; retried if attempts remain
  | 'timed_out' // the handler exceeded timeoutMs
  | 'lease_expired' // nobody heartbeated in time; reaped
  | 'crashed' // the node holding it died and restarted
  | 'released' // handed back without running to the end (shutdown)
  | 'suspended' // a durable step suspended the job: neither success nor failure, spends no retry
  | 'cancelled';

/** Why a job is dead. */
export type DeadReason = 'exhausted' | 'non_retryable' | 'poison' | 'unknown_handler';

/** An event as a producer sends it. */
export interface EventInput {
  name: string;
  data: unknown;
  /** The producer's idempotency key: the same id twice is accepted once. */
  id?: string;
  tenant?: string;
}

export interface EventRow {
  id: string;
  name: string;
  data: unknown;
  tenant: string | null;
  receivedAt: number;
}

/** A job to insert, fully resolved against its handler's policy. */
export interface NewJob {
  handler: string;
  queue: string;
  payload: unknown;
  priority: number;
  /** When the job becomes due; in the future means state `scheduled`. */
  runAt: number;
  maxAttempts: number;
  /** Unique per handler: a second insert with the same key returns the first job. */
  idempotencyKey?: string | null;
  /** At most `concurrencyLimit` jobs with the same key run at once (across nodes). */
  concurrencyKey?: string | null;
  concurrencyLimit?: number | null;
  eventId?: string | null;
  /** W3C trace context of the producer, so the attempt joins its trace. */
  traceparent?: string | null;
  /** The tenant the job runs for (its event's, or given on a direct enqueue): lease caps and fairness. */
  tenant?: string | null;
  /** One priority level's worth in ms of waiting, from the queue's weights (core/queue-policy.ts); absent: strict. */
  priorityMs?: number;
  /** Set when the event's trigger debounces, throttles or batches: the store merges or paces the job (core/trigger-control.ts). */
  control?: JobControl | null;
}

export interface JobRow {
  id: string;
  handler: string;
  queue: string;
  state: JobState;
  payload: unknown;
  eventId: string | null;
  priority: number;
  runAt: number;
  /** Number of leases taken so far (the current/last attempt number). */
  attempts: number;
  maxAttempts: number;
  /** Attempts that ended by crash or lease expiry (poison detection). */
  crashes: number;
  idempotencyKey: string | null;
  concurrencyKey: string | null;
  concurrencyLimit: number | null;
  leaseToken: string | null;
  leaseExpiresAt: number | null;
  /** The API key that took the current lease over HTTP; null for the node's own leases. Only meaningful while `running`. */
  leaseKeyId: string | null;
  workerId: string | null;
  lastError: string | null;
  deadReason: DeadReason | null;
  result: unknown;
  traceparent: string | null;
  /** The tenant it runs for (its event's, or given on a direct enqueue); null: none. */
  tenant: string | null;
  createdAt: number;
  updatedAt: number;
  finishedAt: number | null;
}

export interface AttemptRow {
  jobId: string;
  attempt: number;
  workerId: string;
  startedAt: number;
  endedAt: number | null;
  outcome: AttemptOutcome;
  error: string | null;
}

/** A job handed to a worker by `lease`: the row plus its lease and (if any) its event. */
export interface LeasedJob extends JobRow {
  leaseToken: string;
  leaseExpiresAt: number;
  event: EventRow | null;
}

/** `resume`: list, read and resume interrupts (durable execution), nothing else. */
export type ApiScope = 'admin' | 'produce' | 'work' | 'read' | 'resume';
export const API_SCOPES: readonly ApiScope[] = ['admin', 'produce', 'work', 'read', 'resume'];

export interface ApiKeyRow {
  id: string;
  name: string;
  /** SHA-256 (hex) of the secret; the secret itself is never stored. */
  hash: string;
  scopes: ApiScope[];
  /**
   * Handler patterns a `work` key may work on (see `core/key-scope.ts`);
   * null: the default, handlers declared `remote: true`.
   */
  handlers: string[] | null;
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
}

/** One operator action for the audit trail, before it is chained and signed. */
export interface AuditEntry {
  /** When, as `new Date(ms).toISOString()` (the exact string is hashed). */
  time: string;
  /** Who: an API key id (`key_…`), or `cli:<user>@<host>` for a command run on the box. */
  actor: string;
  /** The HTTP request id (`X-Request-Id`), or null outside a request. */
  requestId: string | null;
  /** What, e.g. `job.cancel`, `key.create`, `backup.restore`. */
  action: string;
  /** What it was done to, e.g. `job:42`, `key:key_…`, `handler:email`. */
  target: string | null;
  /** State before and after, where it applies (JSON values; null otherwise). */
  before: unknown;
  after: unknown;
}

/**
 * A sealed audit record: numbered, chained to the record before it by hash,
 * and signed by the node that wrote it (see `src/ops/audit/chain.ts`).
 */
export interface AuditRecord extends AuditEntry {
  /** 1, 2, 3, … without gaps. */
  seq: number;
  /** `hash` of record `seq - 1`; 64 zeros for record 1. */
  prevHash: string;
  /** SHA-256 (hex) of the record's canonical form. */
  hash: string;
  /** Id of the signing key (a fingerprint of its public key). */
  signer: string;
  /** Ed25519 signature of `hash`, base64. */
  signature: string;
}
