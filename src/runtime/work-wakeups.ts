/**
 * What tells the dispatcher that there is work for it, besides its own
 * settles and the producers' writes (intake-writer.ts): the store's wakeups
 * for work other writers committed, remote workers settling jobs of capped
 * tenants, suspended jobs the due timer queued again, and the fallback poll
 * for wakeups that never came. The runtime (runtime.ts) listens while it
 * runs (`listen`) and hands the rest to its timers.
 */
import type { ResolvedConfig } from '../core/config.js';
import type { WaitRow } from '../core/durable.js';
import { tenantCapsIfAny } from '../core/lease-caps.js';
import type { StorageEngine } from '../store/engine.js';
import type { Dispatcher } from './dispatcher.js';
import type { DueTimer } from './due-timer.js';
import type { Lifecycle } from './lifecycle.js';

/** What the wakeups use of the runtime. */
export interface WorkWakeupsParts {
  config: ResolvedConfig;
  store: StorageEngine;
  dispatcher: Pick<Dispatcher, 'wake'>;
  dueTimer: Pick<DueTimer, 'stageNow'>;
  lifecycle: Lifecycle;
}

export class WorkWakeups {
  /** The handlers this node's dispatcher runs (remote-worker handlers excluded): what the fallback poll asks about. */
  readonly #localHandlers: string[];

  constructor(private readonly parts: WorkWakeupsParts) {
    this.#localHandlers = [...parts.config.handlers.values()].filter((handler) => !handler.remote).map((handler) => handler.name);
  }

  /** Wake the dispatcher on the store's work notices and on remote tenant settles; returns the way to stop. */
  listen(): () => void {
    const offWork = this.parts.store.onWork((_queues, handlers) => this.parts.dispatcher.wake(handlers));
    const offCaps = this.#wakeOnRemoteTenantSettles();
    return () => {
      offWork();
      offCaps();
    };
  }

  /**
   * The fallback poll (maintenance.ts). Wakes only the handlers with queued jobs (missed NOTIFYs):
   * a lease for every handler made each idle lane busy for its round trip every 2 s, and a job
   * enqueued then took an insert and a lease instead of being leased by its insert (the slowest
   * 1 % of enqueue→start, docs/benchmarks.md).
   */
  async poll(): Promise<void> {
    await this.parts.dueTimer.stageNow();
    this.parts.dispatcher.wake(await this.parts.store.handlersWithQueuedJobs(this.#localHandlers));
  }

  /** Suspended jobs the due timer queued again (sleep over, wait timed out): announce them, start them now. */
  async announceWoken(woken: readonly WaitRow[]): Promise<void> {
    this.parts.dispatcher.wake();
    for (const wait of woken) {
      const job = await this.parts.store.getJob(wait.jobId).catch(() => null);
      if (job) this.parts.lifecycle.emit('job:woken', { job, wait, cause: wait.kind === 'sleep' ? 'sleep' : 'timeout', actor: null });
    }
  }

  /**
   * With tenant caps, a remote worker settling a tenant's job frees a place
   * under the tenant's cap that local handlers found full and went idle on:
   * wake them (the dispatcher does the same for its own jobs).
   */
  #wakeOnRemoteTenantSettles(): () => void {
    const { config, lifecycle, dispatcher } = this.parts;
    if (!tenantCapsIfAny(config.flow.tenants)) return () => undefined;
    const wake = ({ job, remote }: { job: { tenant: string | null }; remote?: unknown }) => {
      if (remote && job.tenant !== null) dispatcher.wake();
    };
    const offs = [lifecycle.on('job:succeeded', wake), lifecycle.on('job:failed', wake), lifecycle.on('job:released', wake), lifecycle.on('job:suspended', wake)];
    return () => {
      for (const off of offs) off();
    };
  }
}
