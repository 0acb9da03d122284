/**
 * Wire types of the HTTP API as the SDK sees them (times are ISO-8601
 * strings). They mirror `src/api/serialize.ts`; a test checks that the
 * server's shapes stay assignable to these.
 */

export type JobState = 'scheduled' | 'queued' | 'running' | 'suspended' | 'succeeded' | 'dead' | 'cancelled';
export const TERMINAL_JOB_STATES: readonly JobState[] = ['succeeded', 'dead', 'cancelled'];

export type AttemptOutcome = 'running' | 'succeeded' | 'failed' | 'timed_out' | 'lease_expired' | 'crashed' | 'released' | 'suspended' | 'cancelled';
export type DeadReason = 'exhausted' | 'non_retryable' | 'poison' | 'unknown_handler';
export type ApiScope = 'admin' | 'produce' | 'work' | 'read' | 'resume';

export interface Job {
  id: string;
  handler: string;
  queue: string;
  state: JobState;
  payload: unknown;
  eventId: string | null;
  priority: number;
  runAt: string | null;
  attemptCount: number;
  /** Attempts that ended with their worker gone: lease expired, node crashed, handler thread killed. `poisonAfter` of them make the job dead (`poison`). */
  crashCount: number;
  maxAttempts: number;
  idempotencyKey: string | null;
  concurrencyKey: string | null;
  /** The tenant it runs for (its event's, or given at enqueue). */
  tenant: string | null;
  leaseExpiresAt: string | null;
  workerId: string | null;
  lastError: string | null;
  deadReason: DeadReason | null;
  result: unknown;
  createdAt: string | null;
  updatedAt: string | null;
  finishedAt: string | null;
}

export interface Attempt {
  attempt: number;
  workerId: string;
  startedAt: string | null;
  endedAt: string | null;
  outcome: AttemptOutcome;
  error: string | null;
}

/** A finished durable step (`ctx.step.*`); `result` only with `?include=stepResults`. */
export interface JobStep {
  name: string;
  seq: number;
  kind: 'run' | 'sleep' | 'event' | 'interrupt';
  status: 'succeeded' | 'timed_out';
  attempt: number;
  startedAt: string | null;
  finishedAt: string | null;
  resultBytes: number;
  result?: unknown;
}

/** What a suspended job waits for. */
export interface JobWait {
  id: string;
  reason: 'sleep' | 'event' | 'interrupt';
  step: string;
  createdAt: string | null;
  /** When it wakes by itself (the sleep's end, the wait's timeout); null: no timeout. */
  wakeAt: string | null;
  events: string[] | null;
  match: Record<string, string | number | boolean | null> | null;
  /** Resume it with `POST /v1/interrupts/:id/resume` (scope `resume`). */
  interruptId: string | null;
}

export interface JobWithAttempts extends Job {
  attempts: Attempt[];
  /** Durable steps the job finished, in order. */
  steps: JobStep[];
  /** While `suspended`: its pending wait. */
  wait: JobWait | null;
}

/** A person's question from `ctx.step.interrupt`, as `/v1/interrupts` shows it. */
export interface Interrupt {
  id: string;
  jobId: string;
  handler: string;
  step: string;
  prompt: string;
  /** The JSON Schema the resume's `input` must satisfy; null: any JSON. */
  schema: unknown;
  state: 'pending' | 'resumed' | 'timed_out' | 'cancelled';
  createdAt: string;
  expiresAt: string | null;
  resolvedAt: string | null;
  /** An API key id, `cli:<user>@<host>`, or null. */
  resolvedBy: string | null;
}

export interface InterruptPage {
  interrupts: Interrupt[];
  nextCursor: string | null;
}

/** The short form of a job in intake answers. */
export interface JobRef {
  id: string;
  handler: string;
  queue: string;
  state: JobState;
  runAt: string | null;
  /**
   * Set when the handler's trigger debounces, batches or throttles (docs/api.md "Events"):
   * `merged` when the event joined a job an earlier event opened; `delayedMs` how long a throttle holds it back.
   */
  trigger?: { kind: 'debounce' | 'batch'; merged: boolean } | { kind: 'throttle'; delayedMs: number };
}

export interface EventInput {
  name: string;
  data?: unknown;
  /** Idempotency key. The client generates one when absent, so a retried send is accepted once. */
  id?: string;
  tenant?: string;
}

export interface Event {
  id: string;
  name: string;
  data: unknown;
  tenant: string | null;
  receivedAt: string | null;
}

export interface SentEvent extends Event {
  /** False when an event with this id already existed (nothing was written). */
  created: boolean;
  jobs: JobRef[];
}

export interface EventWithJobs extends Event {
  jobs: JobRef[];
}

export interface JobRequest {
  handler: string;
  payload?: unknown;
  queue?: string;
  priority?: number;
  runAt?: number | string | Date;
  delayMs?: number;
  idempotencyKey?: string;
  maxAttempts?: number;
  concurrencyKey?: string;
  /** The tenant the job runs for: lease caps and fair queues (docs/configuration.md "Flow control"). */
  tenant?: string;
}

export interface EnqueuedJob extends Job {
  /** False when the idempotency key matched an existing job. */
  created: boolean;
}

export interface JobFilter {
  state?: JobState;
  handler?: string;
  queue?: string;
  /** Payload members that must hold these values, nested with dots: `{ orderId: 'o-1', 'customer.id': 'c-9' }` (up to 4). */
  payload?: Record<string, string>;
  /** Created at or after / before these times. */
  createdAfter?: Date;
  createdBefore?: Date;
  /** Jobs per page (1–500). Default 100. */
  pageSize?: number;
}

export interface JobPage {
  jobs: Job[];
  nextCursor: string | null;
}

/** A job as a remote worker leases it. */
export interface LeasedJob {
  id: string;
  handler: string;
  queue: string;
  payload: unknown;
  attempt: number;
  maxAttempts: number;
  priority: number;
  leaseToken: string;
  leaseExpiresAt: string;
  eventId: string | null;
  event: Event | null;
  traceparent: string | null;
  runAt: string;
  createdAt: string;
}

export interface StreamFilter {
  handler?: string | string[];
  queue?: string | string[];
  job?: string | string[];
}

export interface JobChange {
  id: string;
  handler: string;
  queue: string;
  state: JobState;
  attempt?: number;
  eventId?: string | null;
  outcome?: AttemptOutcome;
  error?: string;
  retryAt?: string | null;
  durationMs?: number;
  /** Durable jobs, on `suspended` and when woken: what it waits for, its step, the wait's id, when it wakes by itself. */
  reason?: 'sleep' | 'event' | 'interrupt';
  step?: string;
  waitId?: string;
  wakeAt?: string | null;
  /** Woken: its event arrived, a person resumed it, its timeout or sleep passed. */
  cause?: 'event' | 'resume' | 'timeout' | 'sleep';
  at: string;
}

/** An interrupt's change on the stream (read its prompt and schema with a `resume` key: `GET /v1/interrupts/:id`). */
export interface InterruptChange {
  id: string;
  jobId: string;
  handler: string;
  step: string;
  state: 'pending' | 'resumed' | 'timed_out';
  expiresAt: string | null;
  resolvedBy?: string | null;
  at: string;
}

/** One message of `GET /v1/stream`. `gap`: messages were missed; resync with the REST API. */
export type StreamMessage =
  | { id: string; event: 'job'; data: JobChange }
  | { id: string; event: 'handler'; data: { name: string; queue: string; paused: boolean; action: string; at: string } }
  | { id: string; event: 'queue'; data: { name: string; paused: boolean; action: string; at: string } }
  | { id: string; event: 'interrupt'; data: InterruptChange }
  | { id: string; event: 'gap'; data: { lastEventId: string; reason: string } };
