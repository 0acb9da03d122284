/**
 * The node's Prometheus metrics: one prom-client `Registry` per node (never the
 * global one, so a process — or a test file — can hold several nodes), with
 * every metric of the OPERATIONS.md surface that exists so far. Names, types
 * and labels are documented in docs/observability.md.
 *
 * Label values stay bounded: handler and queue names are declared in config,
 * routes are templates, outcomes and states are fixed sets. Known series are
 * created at 0 when the node starts so `rate()` and absent-series alerts work
 * from the first scrape.
 *
 * Later subsystems add their metrics here, as public fields built with
 * `counter`, `histogram` or a prom-client `Gauge` on `registry`.
 */
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { VERSION } from '../version.js';
import { CounterFamily, HistogramFamily, type CounterSeries, type HistogramSeries } from './series.js';

/** HTTP request durations: 5 ms to 10 s. */
export const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;
/** Job run and wait times: 5 ms to 1 h. */
export const JOB_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600] as const;
/** Store calls: 100 µs (an in-process SQLite read) to 5 s. */
export const STORE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] as const;

/** `drover_jobs_completed_total{outcome}`: how an attempt ended, from the job's point of view. */
export const JOB_OUTCOMES = ['succeeded', 'retried', 'dead', 'cancelled', 'timed_out'] as const;
export type JobOutcome = (typeof JOB_OUTCOMES)[number];
/** Outcomes that have a run duration (a cancelled job did not run to an end here). */
export const TIMED_OUTCOMES = ['succeeded', 'retried', 'dead', 'timed_out'] as const;
export const BREAKER_STATES = ['closed', 'open', 'half_open'] as const;
/** `drover_queue_depth{state}`: the unfinished states, the ones `maxDepth` counts. */
export const DEPTH_STATES = ['scheduled', 'queued', 'running'] as const;
export const BACKPRESSURE_REASONS = ['queue_full', 'shutting_down'] as const;
/** `drover_steps_total{outcome}`: a durable step ran and stored its result, threw, or returned its stored result without running. */
export const STEP_OUTCOMES = ['succeeded', 'failed', 'memoized'] as const;
/** `drover_jobs_suspended_total{reason}`: what a suspended job waits for. */
export const SUSPEND_REASONS = ['sleep', 'event', 'interrupt'] as const;
/** `drover_thread_restarts_total{reason}`: out of memory, died, terminated at the hard timeout. */
export const THREAD_RESTART_REASONS = ['memory', 'crash', 'timeout'] as const;
/** `drover_lease_conflicts_total{op}`: the transitions a stale lease holder can attempt (the `job:stale` ops). */
export const LEASE_CONFLICT_OPS = ['complete', 'fail', 'heartbeat', 'release', 'start', 'step', 'suspend'] as const;
/** `drover_recovery_latency_seconds{cause}`: the job's lease expired (reaper), or its node was declared dead. */
export const RECOVERY_CAUSES = ['lease', 'node'] as const;
/** Recovery after a lease expiry or node death: 10 ms to 5 min (the alert's line is 1 s). */
export const RECOVERY_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300] as const;

export interface MetricsOptions {
  /** `isolation: 'thread'` handlers also get `drover_thread_restarts_total` series. */
  handlers: Iterable<{ name: string; queue: string; isolation?: string; remote?: boolean }>;
  queues: Iterable<string>;
  /** Store engine label (`sqlite`, `postgres`). */
  engine: string;
  /** Each queue's `maxDepth`, for `drover_queue_max_depth` (the "queue near full" alert divides by it). */
  queueLimits?: ReadonlyMap<string, { maxDepth: number }>;
  /** The node's release channel (`rollout.channel`), a label of `drover_build_info`. Default `production`. */
  channel?: string;
}

export class DroverMetrics {
  readonly registry = new Registry();
  readonly engine: string;

  // --- jobs (updated from lifecycle events; see job-metrics.ts) -------------
  readonly jobsEnqueued: CounterFamily<'queue' | 'handler'>;
  readonly jobsStarted: CounterFamily<'handler'>;
  readonly jobsCompleted: CounterFamily<'handler' | 'outcome'>;
  readonly jobDuration: HistogramFamily<'handler' | 'outcome'>;
  readonly jobWait: HistogramFamily<'queue'>;
  readonly jobRetries: CounterFamily<'handler'>;
  readonly leaseExpirations: CounterFamily<'handler'>;
  readonly jobsReleased: CounterFamily<'handler' | 'reason'>;
  readonly eventsIngested: CounterFamily<never>;
  readonly eventsDeduplicated: CounterFamily<never>;
  readonly backpressureRejections: CounterFamily<'queue' | 'reason'>;
  /** Lease calls a cap held jobs back in (cap-metrics.ts); `queue` only for tenant caps. Never a tenant label. */
  readonly leaseCapRefusals: CounterFamily<'cap' | 'queue'>;
  readonly triggerMerges: CounterFamily<'handler' | 'kind'>;
  readonly triggerThrottled: CounterFamily<'handler'>;
  readonly leaseConflicts: CounterFamily<'handler' | 'op'>;
  readonly recoveryLatency: HistogramFamily<'cause'>;

  // --- durable execution (durable-metrics.ts; the interrupt gauges on scrape) -
  readonly steps: CounterFamily<'handler' | 'outcome'>;
  readonly jobsSuspended: CounterFamily<'handler' | 'reason'>;
  readonly stepSequenceChanges: CounterFamily<'handler'>;
  readonly interruptsPending: Gauge;
  readonly interruptOldestAge: Gauge;

  // --- computed on scrape (see scrape-gauges.ts) ----------------------------
  readonly jobsRunning: Gauge<'queue'>;
  readonly queueDepth: Gauge<'queue' | 'state'>;
  readonly queueOldestAge: Gauge<'queue'>;
  readonly queueMaxDepth: Gauge<'queue'>;
  readonly queueBackpressure: Gauge<'queue'>;

  // --- supervision: set by the breaker and quarantine when they land --------
  readonly handlerBreakerState: Gauge<'handler' | 'state'>;
  readonly handlerQuarantined: Gauge<'handler'>;
  /** `isolation: 'thread'` handlers' threads replaced (see supervision-metrics.ts). */
  readonly threadRestarts: CounterFamily<'handler' | 'reason'>;

  // --- HTTP and store ---------------------------------------------------------
  readonly httpRequests: CounterFamily<'method' | 'route' | 'status'>;
  readonly httpDuration: HistogramFamily<'method' | 'route' | 'status'>;
  readonly storeOperationDuration: HistogramFamily<'op' | 'engine'>;

  readonly buildInfo: Gauge<'version' | 'channel'>;

  constructor(options: MetricsOptions) {
    const registry = this.registry;
    this.engine = options.engine;
    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) => new CounterFamily<L>({ name, help, labelNames, registry });
    const histogram = <L extends string>(name: string, help: string, labelNames: readonly L[], buckets: readonly number[]) =>
      new HistogramFamily<L>({ name, help, labelNames, buckets, registry });
    const gauge = <L extends string>(name: string, help: string, labelNames: L[]) => new Gauge<L>({ name, help, labelNames, registers: [registry] });

    this.buildInfo = gauge('drover_build_info', 'Always 1; the labels say which Drover this node runs and its release channel (rollout.channel).', ['version', 'channel']);
    this.buildInfo.set({ version: VERSION, channel: options.channel ?? 'production' }, 1);

    this.jobsEnqueued = counter('drover_jobs_enqueued_total', 'Jobs accepted (newly created; idempotent replays are not counted).', ['queue', 'handler']);
    this.jobsStarted = counter('drover_jobs_started_total', 'Attempts started (leased by this node or by a remote worker through it).', ['handler']);
    this.jobsCompleted = counter(
      'drover_jobs_completed_total',
      'Attempts that ended, by outcome: succeeded; retried (failed, will run again); timed_out (exceeded its timeout, will run again); dead (the job is dead: last attempt failed or timed out, non-retryable, or poisoned); cancelled (by an operator).',
      ['handler', 'outcome'],
    );
    this.jobDuration = histogram('drover_job_duration_seconds', 'Run time of an attempt, from start to its outcome.', ['handler', 'outcome'], JOB_BUCKETS);
    this.jobWait = histogram('drover_job_wait_seconds', 'Time from when a job was due to when an attempt started.', ['queue'], JOB_BUCKETS);
    this.jobRetries = counter('drover_job_retries_total', 'Failed attempts that scheduled another attempt.', ['handler']);
    this.leaseExpirations = counter('drover_lease_expirations_total', 'Leases that expired without an outcome (worker hung or died); the job was queued again or poisoned.', ['handler']);
    this.jobsReleased = counter('drover_jobs_released_total', 'Leases handed back without spending the attempt.', ['handler', 'reason']);
    this.eventsIngested = counter('drover_events_ingested_total', 'Events accepted (new event ids).', []);
    this.eventsDeduplicated = counter('drover_events_deduplicated_total', 'Events whose id was already known: accepted once, nothing written again.', []);
    this.backpressureRejections = counter('drover_backpressure_rejections_total', 'Intake requests refused to protect a queue (429/503).', ['queue', 'reason']);
    this.leaseCapRefusals = counter(
      'drover_lease_cap_refusals_total',
      'Lease calls that got fewer jobs because a lease cap held them back: cap="tenant" (per queue of the held jobs), "worker" (a remote worker id at its cap) or "key" (a work key at its cap; queue empty for both).',
      ['cap', 'queue'],
    );
    this.triggerMerges = counter('drover_trigger_merges_total', 'Events merged into a job an earlier event of the same debounce or batch group opened (no job of their own).', ['handler', 'kind']);
    this.triggerThrottled = counter('drover_trigger_throttled_total', 'Events whose job a throttle trigger scheduled later than the event, for the next free slot (none are dropped).', ['handler']);
    this.leaseConflicts = counter(
      'drover_lease_conflicts_total',
      'Transitions refused because the caller no longer holds the lease (it expired, its node was declared dead, or an operator cancelled the job): a stale completion, failure, heartbeat, release, step or suspend. Nothing was written.',
      ['handler', 'op'],
    );
    this.recoveryLatency = histogram(
      'drover_recovery_latency_seconds',
      'Time from when a job\'s holder was gone (its lease expired: cause="lease"; its node\'s heartbeat went stale past cluster.deadNodeMs: cause="node") to the job being queued again.',
      ['cause'],
      RECOVERY_BUCKETS,
    );
    for (const cause of RECOVERY_CAUSES) this.recoveryLatency.series(cause);

    this.steps = counter('drover_steps_total', 'Durable steps by outcome: succeeded (ran, result stored), failed (threw; the attempt fails), memoized (a re-run returned the stored result without running it).', ['handler', 'outcome']);
    this.jobsSuspended = counter('drover_jobs_suspended_total', 'Jobs suspended by a durable step, by what they wait for: sleep, event, interrupt (a person).', ['handler', 'reason']);
    this.stepSequenceChanges = counter(
      'drover_step_sequence_changes_total',
      'Re-runs that asked for durable steps in another order than stored (the handler\'s code changed under a suspended or retried job); each fails the attempt with a clear error.',
      ['handler'],
    );
    this.interruptsPending = gauge('drover_interrupts_pending', 'Interrupts waiting for a person (POST /v1/interrupts/:id/resume), read from the store on scrape (cached 1 s).', []);
    this.interruptOldestAge = gauge('drover_interrupt_oldest_pending_age_seconds', 'Age of the oldest pending interrupt (0 when none is pending), read on scrape.', []);
    this.interruptsPending.set(0);
    this.interruptOldestAge.set(0);

    this.jobsRunning = gauge('drover_jobs_running', 'Jobs running in this node’s in-process workers (remote workers’ jobs: drover_queue_depth{state="running"}).', ['queue']);
    this.queueDepth = gauge('drover_queue_depth', 'Unfinished jobs in the queue by state, read from the store on scrape (cached 1 s).', ['queue', 'state']);
    this.queueOldestAge = gauge('drover_queue_oldest_job_age_seconds', 'Age of the oldest due job still waiting in the queue (0 when none waits), read on scrape.', ['queue']);
    this.queueMaxDepth = gauge('drover_queue_max_depth', 'The queue’s configured maxDepth: unfinished jobs beyond it are refused (backpressure).', ['queue']);
    for (const [queue, limit] of options.queueLimits ?? []) this.queueMaxDepth.set({ queue }, limit.maxDepth);
    this.queueBackpressure = gauge(
      'drover_queue_backpressure_seconds',
      'How long the queue has been refusing intake because it is full (maxDepth), as seen by this node; 0 while it accepts. Take max across nodes.',
      ['queue'],
    );

    this.handlerBreakerState = gauge('drover_handler_breaker_state', '1 for the state the handler’s circuit breaker is in, 0 for the others.', ['handler', 'state']);
    this.handlerQuarantined = gauge('drover_handler_quarantined', '1 when the handler is quarantined (nothing dispatched until an operator resets it).', ['handler']);
    this.threadRestarts = counter(
      'drover_thread_restarts_total',
      'Threads of isolation: thread handlers replaced, by reason: memory (exceeded limits.memoryMb), crash (the thread died), timeout (terminated at the hard timeout).',
      ['handler', 'reason'],
    );

    this.httpRequests = counter('drover_http_requests_total', 'HTTP requests answered, by route template (unknown paths: route="unmatched").', ['method', 'route', 'status']);
    this.httpDuration = histogram('drover_http_request_duration_seconds', 'HTTP request duration, from arrival to the response being sent.', ['method', 'route', 'status'], HTTP_BUCKETS);
    this.storeOperationDuration = histogram('drover_store_operation_duration_seconds', 'Duration of each storage engine call (including waiting for its group commit).', ['op', 'engine'], STORE_BUCKETS);

    const queues = new Set(options.queues);
    for (const handler of options.handlers) {
      queues.add(handler.queue);
      this.jobsEnqueued.series(handler.queue, handler.name);
      this.jobsStarted.series(handler.name);
      for (const outcome of JOB_OUTCOMES) this.jobsCompleted.series(handler.name, outcome);
      for (const outcome of TIMED_OUTCOMES) this.jobDuration.series(handler.name, outcome);
      this.jobRetries.series(handler.name);
      this.leaseExpirations.series(handler.name);
      this.jobsReleased.series(handler.name, 'shutdown');
      for (const outcome of STEP_OUTCOMES) this.steps.series(handler.name, outcome);
      for (const reason of SUSPEND_REASONS) this.jobsSuspended.series(handler.name, reason);
      this.stepSequenceChanges.series(handler.name);
      for (const op of LEASE_CONFLICT_OPS) this.leaseConflicts.series(handler.name, op);
      for (const state of BREAKER_STATES) this.handlerBreakerState.set({ handler: handler.name, state }, state === 'closed' ? 1 : 0);
      this.handlerQuarantined.set({ handler: handler.name }, 0);
      if (handler.isolation === 'thread' && !handler.remote) for (const reason of THREAD_RESTART_REASONS) this.threadRestarts.series(handler.name, reason);
    }
    for (const queue of queues) {
      this.jobWait.series(queue);
      this.jobsRunning.set({ queue }, 0);
      this.queueOldestAge.set({ queue }, 0);
      this.queueBackpressure.set({ queue }, 0);
      for (const state of DEPTH_STATES) this.queueDepth.set({ queue, state }, 0);
      for (const reason of BACKPRESSURE_REASONS) this.backpressureRejections.series(queue, reason);
      this.leaseCapRefusals.series('tenant', queue);
    }
    this.leaseCapRefusals.series('worker', '');
    this.leaseCapRefusals.series('key', '');
    this.eventsIngested.series();
    this.eventsDeduplicated.series();
  }

  /** The series timing one store operation (`instrumented.ts` keeps it per method). */
  storeTimer(op: string): HistogramSeries {
    return this.storeOperationDuration.series(op, this.engine);
  }

  /** A counter on this node's registry (for subsystems that plug in later). */
  counter<L extends string>(name: string, help: string, labelNames: readonly L[]): CounterFamily<L> {
    return new CounterFamily<L>({ name, help, labelNames, registry: this.registry });
  }

  histogram<L extends string>(name: string, help: string, labelNames: readonly L[], buckets: readonly number[]): HistogramFamily<L> {
    return new HistogramFamily<L>({ name, help, labelNames, buckets, registry: this.registry });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text: this node's metrics, then the process's (`drover_process_*`, `drover_nodejs_*`). */
  async scrape(): Promise<string> {
    const [own, process] = await Promise.all([this.registry.metrics(), processRegistry().metrics()]);
    return own + process;
  }
}

export type { CounterSeries, HistogramSeries };

let shared: Registry | null = null;

/**
 * Process metrics (CPU, memory, handles, GC, event-loop lag) with the
 * `drover_` prefix. One registry per process, shared by every node in it:
 * the values are per process anyway, and each collection starts an
 * event-loop-delay monitor that is never stopped.
 */
export function processRegistry(): Registry {
  if (!shared) {
    shared = new Registry();
    collectDefaultMetrics({ register: shared, prefix: 'drover_' });
  }
  return shared;
}
