/**
 * The runtime wires intake, dispatcher, timers and background tasks around one
 * store, and owns the node's lifecycle: starting → running → draining → stopped.
 * What producers send is written and set moving by the intake writer
 * (intake-writer.ts), which asks the runtime only whether it is running;
 * what else wakes the dispatcher is in work-wakeups.ts, listened to while
 * the runtime runs. It never listens on a socket; the API and CLI sit on
 * top of it.
 */
import type { ResolvedConfig, ResolvedHandler } from '../core/config.js';
import { DroverError } from '../core/errors.js';
import type { EventInput } from '../core/types.js';
import type { Logger } from '../obs/logger.js';
import { restampQueues } from './restamp.js';
import type { EnqueueResult, IngestResult, StorageEngine } from '../store/engine.js';
import type { AuditSink } from './audit-sink.js';
import { FeatureGates } from './feature-gates.js';
import { CronScheduler } from './cron-scheduler.js';
import { Dispatcher } from './dispatcher.js';
import { DueTimer } from './due-timer.js';
import { Intake, type JobRequest } from './intake.js';
import { IntakeWriter } from './intake-writer.js';
import { JobControl } from './job-control.js';
import { Lifecycle, type LifecycleEvents } from './lifecycle.js';
import { Maintenance, type MaintenanceTask } from './maintenance.js';
import { QueueRefusals } from './queue-refusals.js';
import type { AttemptTracer } from '../obs/attempt-tracing.js';
import type { DroverMetrics } from '../obs/metrics.js';
import type { StreamHub } from '../obs/stream-hub.js';
import { observeLifecycle } from './observers.js';
import { Admission } from './admission.js';
import { Tracing } from '../obs/tracing.js';
import { PauseState } from './pauses.js';
import { Supervision } from './supervision.js';
import { ThreadPool } from './thread-pool.js';
import { CLOSE_MS, drainJobs, settlesWithin } from './shutdown.js';
import { RateLimits } from './rate-limits.js';
import { RemoteWorkers } from './remote-workers.js';
import { tenantCapsIfAny } from '../core/lease-caps.js';
import { definedOnly } from '../core/config-sources.js';
import { RuntimeTriggers } from './actions/runtime-triggers.js';
import { WorkWakeups } from './work-wakeups.js';

export type RuntimeState = 'created' | 'running' | 'draining' | 'stopped';

export interface RuntimeOptions<Audit extends AuditSink = AuditSink> {
  config: ResolvedConfig;
  store: StorageEngine;
  logger: Logger;
  /** Identifies this node's in-process worker; stable across restarts so a restart reclaims its own leases. */
  workerId: string;
  /** The operator-action audit trail (the composition root builds it: ops/audit/audit-trail.ts). */
  audit: Audit;
  /**
   * Handlers every node runs besides the config's (the doctor's `drover.smoke`
   * probe, passed in by the composition root); a config handler of the same
   * name wins. The built-in webhook handler is the runtime's own.
   */
  builtinHandlers?: readonly ResolvedHandler[];
  clock?: () => number;
  /** Retry jitter, for in-process and remote attempts alike; default Math.random. */
  random?: () => number;
  /** Lease expiry sweep interval (remote workers, hung nodes). Default 1 s: an index probe on jobs_running_lease, and it bounds the recovery latency after a lease expires (drover_recovery_latency_seconds, alerted at p95 > 1 s). */
  reapIntervalMs?: number;
  /** OpenTelemetry spans for ingests and attempts; default off (no cost). */
  tracing?: Tracing;
  /** Job, event and supervision metrics are observed into it (observers.ts); none when absent. */
  metrics?: DroverMetrics;
  /** The config module's path: `isolation: 'thread'` handlers are loaded from it inside their threads. */
  configPath?: string;
  /** Jobs leased ahead per quick handler, fixed; default sized in time (lease-window.ts). `--low-memory` sets LOW_MEMORY_LEASE_AHEAD. */
  leaseAhead?: number;
}

export interface StopResult {
  /** Jobs that finished within the grace period. */
  drained: boolean;
  /** Jobs aborted at the end of the grace period and released for another run. */
  released: number;
}

/** `Audit`: the audit sink's own type, so its owner keeps its extras (`startNode` gives `runtime.audit.key`). */
export class Runtime<Audit extends AuditSink = AuditSink> {
  readonly config: ResolvedConfig;
  readonly store: StorageEngine;
  readonly logger: Logger;
  /** Record operator actions here (`recordOperatorAction` in routes). */
  readonly audit: Audit;
  readonly lifecycle: Lifecycle;
  readonly intake: Intake;
  readonly dispatcher: Dispatcher;
  /** Jobs leased and settled by remote workers over HTTP (the routes in api/routes/workers.ts call it). */
  readonly remoteWorkers: RemoteWorkers;
  /** Operator actions on a job: cancel, retry. */
  readonly jobControl: JobControl;
  /** Paused handlers and queues (operator actions, persisted in the store's metadata). */
  readonly pauses: PauseState;
  /** Since when each full queue has refused intake (GET /v1/queues, drover_queue_backpressure_seconds). */
  readonly refusals: QueueRefusals;
  /** Quarantine and circuit breakers per handler (persisted in the store's metadata). */
  readonly supervision: Supervision;
  /** Runtime triggers with the built-in actions (webhook, http, telegram, mcp), and the per-target breakers of their deliveries. */
  readonly triggers: RuntimeTriggers;
  /** Per-handler dispatch rate limits (this node's windows). */
  readonly rateLimits: RateLimits;
  /** Whether a handler's jobs may start now (here or on a remote worker). */
  readonly admission: Admission;
  /** Worker threads of `isolation: 'thread'` handlers; null when none is configured. */
  readonly threads: ThreadPool | null;
  readonly workerId: string;
  readonly startedAt: number;
  readonly clock: () => number;
  readonly tracing: Tracing;
  /** Attempt spans and the trace ids on job log lines. */
  readonly attempts: AttemptTracer;
  /** Lifecycle messages for `GET /v1/stream` (SSE), with the replay buffer. */
  readonly stream: StreamHub;
  /** Feature gates with the operators' runtime overrides (`ctx.features`, `/v1/gates`). */
  readonly gates: FeatureGates;
  #state: RuntimeState = 'created';
  readonly #dueTimer: DueTimer;
  readonly #cron: CronScheduler;
  /** Reaper, pruner, and liveness: registration, heartbeats, dead-node reclaim, fallback poll (maintenance.ts). */
  readonly #maintenance: Maintenance;
  /** Commits what producers send and sets it moving (intake-writer.ts). */
  readonly #writer: IntakeWriter;
  /** The store's work notices, remote tenant settles, woken jobs and the fallback poll (work-wakeups.ts). */
  readonly #wakeups: WorkWakeups;
  #unsubscribe: (() => void) | null = null;
  #stopping: Promise<StopResult> | null = null;

  constructor(options: RuntimeOptions<Audit>) {
    const base = withBuiltins(options.config, options.builtinHandlers ?? []);
    // The built-in `drover.<action>` handlers run the deliveries of runtime triggers (actions/runtime-triggers.ts).
    this.triggers = new RuntimeTriggers({ store: options.store, config: base, clock: () => this.clock(), onError: (task, error) => this.lifecycle.emit('task:failed', { task, error }) });
    this.config = withBuiltins(base, [...this.triggers.handlers.values()]);
    this.store = options.store;
    this.logger = options.logger;
    this.workerId = options.workerId;
    this.audit = options.audit;
    this.clock = options.clock ?? Date.now;
    const random = options.random ?? Math.random;
    const isRunning = () => this.#state === 'running';
    this.startedAt = this.clock();
    const reportTaskError = (task: string) => (error: Error) => {
      this.lifecycle.emit('task:failed', { task, error });
    };
    this.lifecycle = new Lifecycle((error, event) => this.logger.error({ err: error, event }, 'lifecycle listener threw'));
    this.tracing = options.tracing ?? Tracing.disabled();
    this.gates = new FeatureGates({
      store: this.store,
      configured: this.config.rollout.featureGates,
      onChange: (gate, before) => this.logger.warn({ gate: gate.name, enabled: gate.enabled, was: before, source: gate.source }, `feature gate ${gate.name} is now ${gate.enabled ? 'on' : 'off'}`),
      onError: reportTaskError('feature-gates'),
    });
    this.intake = new Intake(this.config, this.clock, (event) => this.triggers.route(event));
    this.rateLimits = new RateLimits(this.clock, () => this.dispatcher.wake(), this.store);
    this.#dueTimer = new DueTimer(this.store, this.clock, reportTaskError('stage-due'), (woken) => void this.#wakeups.announceWoken(woken));
    this.refusals = new QueueRefusals(this.clock);
    this.pauses = new PauseState({ store: this.store, config: this.config, lifecycle: this.lifecycle, onResume: () => this.dispatcher.wake() });
    const isolated = [...this.config.handlers.values()].filter((h) => h.isolation === 'thread' && !h.remote).map((h) => h.name);
    if (isolated.length > 0 && !options.configPath) {
      throw new DroverError('config_invalid', `handlers ${isolated.join(', ')} use isolation: 'thread', which needs the config module's path (start with drover start --config FILE)`);
    }
    this.threads = isolated.length > 0 && options.configPath
      ? new ThreadPool({
          configPath: options.configPath,
          ...this.config.threads,
          onRestart: (handler, reason, detail) => this.lifecycle.emit('thread:restarted', { handler, reason, detail }),
        })
      : null;
    this.supervision = new Supervision({ store: this.store, handlers: this.config.handlers, lifecycle: this.lifecycle, clock: this.clock, wake: () => this.dispatcher.wake(), nodeId: this.workerId });
    // Logs, traces, metrics and the SSE stream, subscribed in one place (observers.ts): after supervision (its gauges read it),
    // before the dispatcher (it runs handlers inside attempt spans) and before anything is emitted.
    const observers = observeLifecycle({
      lifecycle: this.lifecycle,
      logger: this.logger,
      tracing: this.tracing,
      metrics: options.metrics ?? null,
      runtime: this,
      stream: { ...this.config.stream, clock: this.clock },
    });
    this.attempts = observers.attempts;
    this.stream = observers.stream;
    this.admission = new Admission({ pauses: this.pauses, supervision: this.supervision, rateLimits: this.rateLimits, triggers: this.triggers });
    this.dispatcher = new Dispatcher({
      store: this.store,
      handlers: this.config.handlers,
      lifecycle: this.lifecycle,
      logger: this.logger,
      workerId: this.workerId,
      clock: this.clock,
      random,
      poisonAfter: this.config.poisonAfter,
      onRetryScheduled: (runAt) => this.#dueTimer.noteDue(runAt),
      isHandlerPaused: (name) => this.admission.isHeld(name),
      slotLimit: (name) => this.admission.slotLimit(name),
      ...(this.threads ? { threads: this.threads } : {}),
      pausedQueues: () => this.pauses.pausedQueues(),
      attempts: this.attempts,
      admit: (job, handler) => this.admission.admit(job, handler),
      startRoom: (handler) => this.admission.room(handler),
      steps: { store: this.store, lifecycle: this.lifecycle, limits: this.config.durable, clock: this.clock, onWakeAt: (at) => this.#dueTimer.noteDue(at) },
      features: this.gates,
      ...definedOnly({ tenantCaps: tenantCapsIfAny(this.config.flow.tenants), prefetch: options.leaseAhead }),
    });
    this.remoteWorkers = new RemoteWorkers({
      store: this.store,
      lifecycle: this.lifecycle,
      handlers: this.config.handlers,
      admission: this.admission,
      pausedQueues: () => this.pauses.pausedQueues(),
      clock: this.clock,
      random,
      poisonAfter: this.config.poisonAfter,
      onScheduled: (runAt) => this.#dueTimer.noteDue(runAt),
      isRunning,
      caps: this.config.flow,
    });
    this.jobControl = new JobControl({ store: this.store, lifecycle: this.lifecycle });
    const intakeParts = { config: this.config, store: this.store, dispatcher: this.dispatcher, dueTimer: this.#dueTimer, lifecycle: this.lifecycle };
    this.#writer = new IntakeWriter({ ...intakeParts, intake: this.intake, refusals: this.refusals, tracing: this.tracing, clock: this.clock, isRunning });
    this.#wakeups = new WorkWakeups(intakeParts);
    this.#cron = new CronScheduler(this.config.handlers.values(), this.clock, (tick) => this.#writer.enqueueCronTick(tick), reportTaskError('cron'));
    this.#maintenance = new Maintenance({
      store: this.store,
      lifecycle: this.lifecycle,
      logger: this.logger,
      nodeId: this.workerId,
      clock: this.clock,
      config: this.config,
      reapIntervalMs: options.reapIntervalMs ?? 1_000,
      isRunning,
      onSuperseded: () => void this.stop(),
      poll: () => this.#wakeups.poll(),
      onError: reportTaskError,
    });
  }

  get state(): RuntimeState {
    return this.#state;
  }

  /** Take over this worker's leases from a previous incarnation, then start dispatching. */
  async start(): Promise<void> {
    if (this.#state !== 'created') throw new Error(`runtime cannot start from state ${this.#state}`);
    await this.#maintenance.register();
    const reclaimed = await this.store.reclaimWorker(this.workerId, { poisonAfter: this.config.poisonAfter });
    if (reclaimed.length > 0) {
      this.logger.warn({ worker_id: this.workerId, jobs: reclaimed.length }, 'reclaimed jobs left running by a previous run of this node');
    }
    await restampQueues(this.store, this.config.queues, this.logger);
    await this.pauses.start();
    await this.supervision.start();
    await this.triggers.start();
    await this.gates.start();
    this.#state = 'running';
    this.#unsubscribe = this.#wakeups.listen();
    this.#dueTimer.start();
    this.dispatcher.start();
    this.#cron.start();
    this.#maintenance.start();
  }

  /** A task the node's operations side runs (audit export, backups) failed: reported like the runtime's own (`task:failed`). */
  reportTaskFailure(task: string, error: Error): void {
    this.lifecycle.emit('task:failed', { task, error });
  }

  /** The in-process backup schedule took a backup (`backup:succeeded`; metrics and logs observe it). */
  reportBackup(backup: LifecycleEvents['backup:succeeded']): void {
    this.lifecycle.emit('backup:succeeded', backup);
  }

  /** Run a background task now (operators, tests) instead of waiting for its interval. */
  async runTask(name: MaintenanceTask): Promise<void> {
    await this.#maintenance.run(name);
  }

  /** Accept events: each is committed with the jobs it fans out to before this resolves. */
  ingestEvents(inputs: readonly EventInput[], traceparent: string | null = null): Promise<IngestResult[]> {
    return this.#writer.ingestEvents(inputs, traceparent);
  }

  /** Accept direct jobs: committed before this resolves; refused (a rejection) while not running. */
  enqueueJobs(requests: readonly JobRequest[], traceparent: string | null = null): Promise<EnqueueResult[]> {
    return this.#writer.enqueueJobs(requests, traceparent);
  }

  /**
   * Graceful shutdown (OPERATIONS.md "Shutdown"): stop intake and leasing, let
   * running jobs finish within the grace period, abort the rest through their
   * signals and release their leases. It keeps a deadline (shutdown.ts): a
   * handler that ignores its signal is abandoned (a thread one terminated)
   * and its lease released, and each closing step is bounded, so it resolves
   * within the grace period + ABORT_SETTLE_MS + RELEASE_MS + CLOSE_MS / 2.
   * Idempotent: a second call returns the same promise.
   */
  stop(graceMs: number = this.config.shutdown.graceMs): Promise<StopResult> {
    this.#stopping ??= this.#stop(graceMs);
    return this.#stopping;
  }

  async #stop(graceMs: number): Promise<StopResult> {
    const graceEnds = performance.now() + graceMs;
    this.#state = 'draining';
    this.dispatcher.stopLeasing();
    const jobs = drainJobs(this, graceEnds, graceMs);
    this.#cron.stop();
    this.pauses.stop();
    this.gates.stop();
    this.#dueTimer.stop();
    this.#unsubscribe?.();
    const { drained, released } = await jobs;
    // Each step bounded: a sick store must not hold the exit (its calls have deadlines of their own too).
    const closed = await settlesWithin((async () => {
      await this.#maintenance.stop();
      await this.supervision.stop();
      await this.triggers.stop();
      this.rateLimits.stop();
      await this.threads?.close();
      await this.#maintenance.deregister().catch(() => undefined);
    })(), CLOSE_MS / 2);
    if (!closed) this.logger.warn({ ms: CLOSE_MS / 2 }, 'stopping background tasks took too long; exiting without waiting for them');
    this.#state = 'stopped';
    return { drained, released };
  }
}

/** `config` with `builtins` added, except where the config has a handler of the same name. The original is not changed. */
function withBuiltins(config: ResolvedConfig, builtins: readonly ResolvedHandler[]): ResolvedConfig {
  const missing = builtins.filter((handler) => !config.handlers.has(handler.name));
  if (missing.length === 0) return config;
  return { ...config, handlers: new Map([...config.handlers, ...missing.map((handler) => [handler.name, handler] as const)]) };
}
