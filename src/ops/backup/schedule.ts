/**
 * The optional in-process backup schedule (`backup.every`): a background
 * task that takes a backup, then applies retention to `backup.dir`. It runs
 * in the node that owns the store, so the copy uses SQLite's online backup API
 * on the node's own connection (see `store/sqlite/backup.ts`).
 *
 * With several PostgreSQL nodes every node with a schedule would take its own
 * dump; configure `backup.every` on one of them (there is no leader election yet).
 */
import { BackgroundTask } from '../../runtime/background-task.js';
import type { BackupStore, MetaStore } from '../../store/engine.js';
import type { AuditTrail } from '../audit/audit-trail.js';
import { takeBackup, type BackupResult } from './create.js';
import { pruneBackups, type RetentionPlan, type RetentionPolicy } from './retention.js';

export interface BackupScheduleOptions {
  store: BackupStore & MetaStore;
  everyMs: number;
  dir: string;
  retention: RetentionPolicy;
  source: string;
  nodeId: string;
  auditKeys: () => Array<{ keyId: string; publicKey: string }>;
  audit: AuditTrail;
  clock?: () => number;
  onSuccess(result: BackupResult & { pruned: RetentionPlan }): void;
  onError(error: Error): void;
}

/**
 * @example
 * const schedule = new BackupSchedule({ store, everyMs: 86_400_000, dir, retention, ... });
 * schedule.start();
 * await schedule.runNow(); // also what tests call
 */
export class BackupSchedule {
  /** When the last scheduled backup succeeded (ms), or null. */
  lastSuccessAt: number | null = null;
  readonly #task: BackgroundTask;

  constructor(private readonly options: BackupScheduleOptions) {
    this.#task = new BackgroundTask({
      name: 'backup',
      intervalMs: options.everyMs,
      run: () => this.#run(),
      onError: options.onError,
    });
  }

  get failures(): number {
    return this.#task.failures;
  }

  start(): void {
    this.#task.start();
  }

  /** Take a backup now (or wait for the one in progress). Failures go to `onError`. */
  runNow(): Promise<void> {
    return this.#task.trigger();
  }

  /** Stop the schedule; waits for a backup in progress (it must finish before the store closes). */
  stop(): Promise<void> {
    return this.#task.stop();
  }

  async #run(): Promise<void> {
    const o = this.options;
    const result = await takeBackup({
      store: o.store,
      outDir: o.dir,
      source: o.source,
      nodeId: o.nodeId,
      auditKeys: o.auditKeys(),
      signingKey: o.audit.key,
      ...(o.clock ? { clock: o.clock } : {}),
      audit: { trail: o.audit, actor: `node:${o.nodeId}` },
    });
    const pruned = pruneBackups(o.dir, o.retention, { dryRun: false });
    this.lastSuccessAt = Date.parse(result.manifest.createdAt);
    o.onSuccess({ ...result, pruned });
  }
}
