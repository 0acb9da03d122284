/**
 * Bulk retry and cancel of a filtered set of jobs, as tracked work on the
 * node rather than a loop in a browser: the node walks the matching jobs
 * newest first in pages (the same keyset search as `GET /v1/jobs`) and applies
 * the operator action to each through the runtime's one path
 * (`runtime/job-control.ts`), so every job's change emits its lifecycle
 * event like a single retry or cancel does.
 *
 * Only jobs that existed when the run started are touched: the run records
 * the newest matching id first and never goes above it. A job that is no
 * longer in a state the action applies to (finished meanwhile, retried by
 * someone else) is counted as skipped, not failed.
 *
 * Progress is kept in the store's metadata (`jobs.bulk`, the last
 * `KEPT_RUNS` runs), written after every page, so any node sharing the store
 * answers `GET /v1/jobs/bulk/:id`. A run belongs to the node that started
 * it; if that node stops, the run ends `interrupted` (or, when it was killed,
 * stays `running` with that node's id): start it again, it skips what it
 * already did.
 */
import { randomUUID } from 'node:crypto';
import { DroverError, toError } from '../core/errors.js';
import type { JobFilter, JobReads, MetaStore } from '../store/engine.js';
import type { JobControl } from '../runtime/job-control.js';

export type BulkAction = 'retry' | 'cancel';
/** The filter of a bulk run: `GET /v1/jobs`'s filters, without paging. */
export type BulkFilter = Omit<JobFilter, 'limit' | 'before' | 'eventId'>;

export interface BulkRun {
  id: string;
  action: BulkAction;
  filter: BulkFilter;
  state: 'running' | 'done' | 'interrupted' | 'failed';
  /** Jobs the filter matched (visited so far). */
  matched: number;
  changed: number;
  /** Matched jobs the action did not apply to (already finished, already retried, …). */
  skipped: number;
  actor: string;
  nodeId: string;
  startedAt: number;
  finishedAt: number | null;
  error: string | null;
}

const META_KEY = 'jobs.bulk';
const PAGE = 200;
export const KEPT_RUNS = 50;

export interface BulkJobsDeps {
  store: Pick<JobReads, 'listJobs'> & Pick<MetaStore, 'getMeta' | 'updateMeta'>;
  jobControl: Pick<JobControl, 'retry' | 'cancel'>;
  clock: () => number;
  nodeId: string;
}

export class BulkJobs {
  #stopping = false;
  readonly #running = new Set<Promise<void>>();

  constructor(private readonly deps: BulkJobsDeps) {}

  /**
   * Start a run; resolves once it is recorded (the work goes on in the background).
   *
   * @example
   * const run = await bulk.start('retry', { state: 'dead', handler: 'send-email' }, 'key_abc');
   * // later: (await bulk.get(run.id)).state === 'done'
   */
  async start(action: BulkAction, filter: BulkFilter, actor: string): Promise<BulkRun> {
    if (this.#stopping) throw new DroverError('shutting_down', 'this node is stopping and starts no bulk run; send it to another node', { retryAfterSeconds: 5 });
    const run: BulkRun = {
      id: `bulk_${randomUUID().replace(/-/g, '').slice(0, 16)}`,
      action,
      filter,
      state: 'running',
      matched: 0,
      changed: 0,
      skipped: 0,
      actor,
      nodeId: this.deps.nodeId,
      startedAt: this.deps.clock(),
      finishedAt: null,
      error: null,
    };
    await this.#save(run);
    const work = this.#run(run).finally(() => this.#running.delete(work));
    this.#running.add(work);
    return run;
  }

  async get(id: string): Promise<BulkRun | null> {
    return parse(await this.deps.store.getMeta(META_KEY)).find((run) => run.id === id) ?? null;
  }

  async list(): Promise<BulkRun[]> {
    return parse(await this.deps.store.getMeta(META_KEY));
  }

  /** Stop after the job in hand; runs still going end `interrupted`. */
  async close(): Promise<void> {
    this.#stopping = true;
    await Promise.all([...this.#running]);
  }

  async #run(run: BulkRun): Promise<void> {
    const apply = run.action === 'retry' ? (id: string) => this.deps.jobControl.retry(id) : (id: string) => this.deps.jobControl.cancel(id);
    try {
      // The newest match when the run starts bounds it: jobs created later are not this run's.
      let before: string | undefined = (await this.deps.store.listJobs({ ...run.filter, limit: 1 }))[0]?.id;
      if (before !== undefined) before = String(BigInt(before) + 1n);
      while (before !== undefined) {
        const page = await this.deps.store.listJobs({ ...run.filter, limit: PAGE, before });
        for (const job of page) {
          if (this.#stopping) {
            run.state = 'interrupted';
            return;
          }
          run.matched++;
          try {
            await apply(job.id);
            run.changed++;
          } catch (error) {
            if (!(error instanceof DroverError) || (error.code !== 'invalid_state' && error.code !== 'not_found')) throw error;
            run.skipped++;
          }
        }
        before = page.length === PAGE ? page[page.length - 1]!.id : undefined;
        if (before !== undefined) await this.#save(run);
      }
      run.state = 'done';
    } catch (error) {
      run.state = 'failed';
      run.error = toError(error).message.slice(0, 500);
    } finally {
      run.finishedAt = this.deps.clock();
      await this.#save(run).catch(() => undefined); // the store is gone: the run stays `running` there, with this node's id
    }
  }

  async #save(run: BulkRun): Promise<void> {
    await this.deps.store.updateMeta(META_KEY, (current) => {
      const runs = parse(current).filter((r) => r.id !== run.id);
      return JSON.stringify([{ ...run }, ...runs].slice(0, KEPT_RUNS));
    });
  }
}

function parse(raw: string | null): BulkRun[] {
  if (!raw) return [];
  try {
    const runs = JSON.parse(raw) as unknown;
    return Array.isArray(runs) ? (runs as BulkRun[]) : [];
  } catch {
    return [];
  }
}
