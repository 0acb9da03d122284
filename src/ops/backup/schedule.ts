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
import { toError } from '../../core/errors.js';
import { trustedKeys } from '../audit/node-key.js';
import { takeBackup, type BackupResult } from './create.js';
import { RemoteBackups, type RemoteTarget } from './remote.js';
import { pruneBackups, type RetentionPlan, type RetentionPolicy } from './retention.js';
import { verifyBackup } from './verify.js';

/** Store metadata keys (ms) behind the verify and upload gauges (ops/backup/metrics.ts): any node reports them. */
export const VERIFY_SUCCESS_META = 'backup_verify_last_success_at';
export const VERIFY_FAILURE_META = 'backup_verify_last_failure_at';
export const REMOTE_SUCCESS_META = 'backup_remote_last_success_at';

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
  /** Verify each new backup (`drover backup verify`'s checks), with the keys the data directory trusts. */
  verify?: { dataDir: string; databaseUrl: string } | null;
  /** Copy each new backup to object storage, check it there, prune there. */
  remote?: RemoteTarget | null;
  onSuccess(result: BackupResult & { pruned: RetentionPlan }): void;
  /** `task`: `backup`, `backup-verify` or `backup-upload`; a failed verify or upload does not undo the local backup. */
  onError(error: Error, task?: string): void;
  onUploaded?(url: string): void;
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
      onError: (error) => options.onError(error, 'backup'),
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
  async stop(): Promise<void> {
    await this.#task.stop();
    this.#remote?.close();
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
    if (o.verify) await this.#step('backup-verify', () => this.#verify(result.path));
    if (o.remote) await this.#step('backup-upload', () => this.#upload(result.path));
  }

  /** A verify or upload failure is reported on its own, and the next step still runs. */
  async #step(task: string, run: () => Promise<void>): Promise<void> {
    try {
      await run();
    } catch (error) {
      this.options.onError(toError(error), task);
    }
  }

  async #verify(path: string): Promise<void> {
    const o = this.options;
    const now = (o.clock ?? Date.now)();
    const result = await verifyBackup(path, { databaseUrl: o.verify!.databaseUrl, trustedKeys: trustedKeys(o.verify!.dataDir) });
    if (!result.ok) {
      await o.store.setMeta(VERIFY_FAILURE_META, String(now));
      const failed = result.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
      throw new Error(`backup ${path} failed verification (${failed.join('; ')})`);
    }
    await o.store.setMeta(VERIFY_SUCCESS_META, String(now));
  }

  async #upload(path: string): Promise<void> {
    const o = this.options;
    this.#remote ??= await RemoteBackups.open(o.remote!);
    const uploaded = await this.#remote.upload(path);
    await this.#remote.prune(o.retention, { dryRun: false });
    await o.store.setMeta(REMOTE_SUCCESS_META, String((o.clock ?? Date.now)()));
    o.onUploaded?.(uploaded.url);
  }

  #remote: RemoteBackups | null = null;
}
