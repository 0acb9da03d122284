/**
 * The runtime's write side of intake: what producers send (events, job
 * requests, cron ticks), resolved into rows by intake.ts, is committed to the
 * store here and announced (`event:ingested`, `job:enqueued`), and the jobs
 * are set moving: the dispatcher is woken so its lease can ride in the same
 * commit, an idle lane may have its jobs leased by their own insert, and jobs
 * due later are noted with the due timer. A full queue refuses (recorded in
 * `QueueRefusals`). The runtime (runtime.ts) owns the lifecycle and says only
 * whether the node accepts work (`isRunning`).
 */
import type { ResolvedConfig } from '../core/config.js';
import { DroverError } from '../core/errors.js';
import type { EventInput, JobRow, NewJob } from '../core/types.js';
import { eventDestination, jobDestination, type Tracing } from '../obs/tracing.js';
import type { EnqueueResult, IngestResult, StorageEngine } from '../store/engine.js';
import type { CronTick } from './cron-scheduler.js';
import type { Dispatcher } from './dispatcher.js';
import type { DueTimer } from './due-timer.js';
import type { Intake, JobRequest } from './intake.js';
import type { Lifecycle } from './lifecycle.js';
import type { QueueRefusals } from './queue-refusals.js';

/** What the write side of intake uses of the runtime. */
export interface IntakeWriterParts {
  config: ResolvedConfig;
  store: StorageEngine;
  intake: Intake;
  dispatcher: Pick<Dispatcher, 'wake' | 'claimAtIntake' | 'startClaimed'>;
  dueTimer: Pick<DueTimer, 'noteDue'>;
  lifecycle: Lifecycle;
  refusals: QueueRefusals;
  tracing: Tracing;
  clock: () => number;
  /** The node accepts work (it is running, not starting or draining). */
  isRunning: () => boolean;
}

export class IntakeWriter {
  constructor(private readonly parts: IntakeWriterParts) {}

  /** Runtime.ingestEvents says what this does. */
  async ingestEvents(inputs: readonly EventInput[], traceparent: string | null): Promise<IngestResult[]> {
    this.#assertAccepting();
    // With tracing on, a producer span wraps the write and its traceparent is stored with each job.
    return this.parts.tracing.produce(() => eventDestination(inputs), inputs.length, traceparent, (producer) => this.#ingest(inputs, producer));
  }

  /** Runtime.enqueueJobs says what this does. */
  enqueueJobs(requests: readonly JobRequest[], traceparent: string | null): Promise<EnqueueResult[]> {
    // Not async: the producer's promise is returned as it is, without one more around it per request.
    try {
      this.#assertAccepting();
    } catch (error) {
      return Promise.reject(error);
    }
    return this.parts.tracing.produce(() => jobDestination(requests, this.parts.config.handlers), requests.length, traceparent, (producer) => this.#enqueue(requests, producer));
  }

  /** A cron tick's job, keyed by its tick: the same tick enqueued twice (another node, a restart) is one job. Dropped while not running. */
  async enqueueCronTick(tick: CronTick): Promise<void> {
    if (!this.parts.isRunning()) return;
    const job = this.parts.intake.job({ handler: tick.handler.name, payload: { cron: tick.expression, tickAt: new Date(tick.tickAt).toISOString() } });
    job.idempotencyKey = `cron:${tick.expression}:${new Date(tick.tickAt).toISOString()}`;
    const [result] = await this.parts.store.enqueue([job], { queueLimits: this.parts.config.queues });
    if (result?.created) this.#afterEnqueue([result.job]);
  }

  async #ingest(inputs: readonly EventInput[], traceparent: string | null): Promise<IngestResult[]> {
    const { intake, store, config, lifecycle, dispatcher, dueTimer } = this.parts;
    const items = inputs.map((input) => intake.eventItem(input, traceparent));
    const write = store.ingest(items, { queueLimits: config.queues });
    this.#leaseAlongside(items.flatMap((item) => item.jobs));
    const results = await this.#refuseWhenFull(() => write);
    const woken = new Set<string>();
    for (const result of results) {
      lifecycle.emit('event:ingested', { eventId: result.event.id, name: result.event.name, jobs: result.jobs.length, created: result.created });
      if (result.created) {
        // A job the event merged into was enqueued by the event that opened it: count it once.
        const joined = new Set((result.controls ?? []).filter((c) => c.merged).map((c) => c.jobId));
        this.#afterEnqueue(result.jobs.filter((job) => !joined.has(job.id)));
        for (const control of result.controls ?? []) {
          lifecycle.emit('trigger:controlled', { handler: control.handler, kind: control.kind, merged: control.merged, delayedMs: control.delayedMs });
        }
        for (const job of result.jobs) if (joined.has(job.id) && job.state === 'scheduled') dueTimer.noteDue(job.runAt);
      }
      for (const { wait, job } of result.resolvedWaits ?? []) {
        woken.add(job.handler);
        lifecycle.emit('job:woken', { job, wait, cause: 'event', actor: wait.resolvedBy });
      }
    }
    // The event queued suspended jobs in its own transaction: start them now, not at the next poll.
    if (woken.size > 0) dispatcher.wake([...woken]);
    return results;
  }

  async #enqueue(requests: readonly JobRequest[], traceparent: string | null): Promise<EnqueueResult[]> {
    const { intake, store, config, dispatcher } = this.parts;
    const jobs = requests.map((request) => intake.job(request, traceparent));
    // PostgreSQL: jobs this idle node starts at once are leased by their insert (Dispatcher.claimAtIntake).
    const claim = store.capabilities.leaseAtIntake ? dispatcher.claimAtIntake(jobs, this.parts.clock()) : null;
    const write = store.enqueue(jobs, { queueLimits: config.queues, ...(claim ? { lease: claim.lease } : {}) });
    this.#leaseAlongside(jobs);
    let results: EnqueueResult[];
    try {
      results = await this.#refuseWhenFull(() => write);
    } catch (error) {
      if (claim) dispatcher.startClaimed(claim, []);
      throw error;
    }
    const created: JobRow[] = [];
    for (const result of results) if (result.created) created.push(result.job);
    this.#afterEnqueue(created);
    // After `job:enqueued`, so a job's events keep their order.
    if (claim) dispatcher.startClaimed(claim, results.map((result) => result.leased));
    return results;
  }

  /**
   * Wake the dispatcher right after a write is submitted, before it commits:
   * its lease then joins the same group commit, so a job enqueued into an idle
   * node starts after one commit instead of two. Only with group commit: on
   * PostgreSQL that lease would be a round trip that finds nothing and delays
   * the real one, which the engine's post-commit wakeup starts. Only the
   * handlers of jobs due now: the others have nothing new to lease.
   */
  #leaseAlongside(jobs: readonly NewJob[]): void {
    if (!this.parts.store.capabilities.groupCommit) return;
    const now = this.parts.clock();
    const due = new Set<string>();
    for (const job of jobs) if (job.runAt <= now) due.add(job.handler);
    if (due.size > 0) this.parts.dispatcher.wake([...due]);
  }

  #assertAccepting(): void {
    if (!this.parts.isRunning()) {
      throw new DroverError('shutting_down', 'this node is not accepting work (it is draining or not started); send to another node or retry', {
        retryAfterSeconds: 5,
      });
    }
  }

  async #refuseWhenFull<T>(write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (error) {
      if (error instanceof DroverError && error.code === 'queue_full') {
        this.parts.refusals.refused(String(error.extensions.queue));
        this.parts.lifecycle.emit('intake:rejected', { queue: String(error.extensions.queue), reason: 'queue_full' });
      }
      throw error;
    }
  }

  #afterEnqueue(jobs: readonly JobRow[]): void {
    const { refusals, lifecycle, dueTimer } = this.parts;
    for (const job of jobs) {
      refusals.accepted(job.queue);
      lifecycle.emit('job:enqueued', { job });
      if (job.state === 'scheduled') dueTimer.noteDue(job.runAt);
    }
  }
}
