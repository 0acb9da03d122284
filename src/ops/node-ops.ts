/**
 * The operations side of a running node: its audit trail (signed with the
 * key in the data directory), the audit export and the optional backup
 * schedule. `startNode` prepares it before the runtime (which carries the
 * audit trail), starts it after, and stops it before the store closes.
 */
import { join } from 'node:path';
import type { ResolvedConfig } from '../core/config.js';
import type { Runtime } from '../runtime/runtime.js';
import type { AuditStore, BackupStore, MetaStore } from '../store/engine.js';
import { AuditTrail } from './audit/audit-trail.js';
import { AuditExporter } from './audit/export.js';
import { installationKeys, loadOrCreateNodeKey } from './audit/node-key.js';
import { BackupSchedule } from './backup/schedule.js';
import { SnapshotService } from './backup/snapshots.js';
import { credentialsFromFiles } from './backup/remote.js';
import { dataDirFor, inDataDir } from './data-dir.js';

export interface NodeOps {
  dataDir: string;
  audit: AuditTrail;
  exporter: AuditExporter | null;
  backups: BackupSchedule | null;
  /** `/v1/snapshots`: made when the node starts. */
  snapshots: SnapshotService | null;
  /** Start the export and the backup schedule (after the runtime started). */
  start(runtime: Runtime): void;
  /** Stop both, waiting for a backup in progress, and export what is left. */
  stop(): Promise<void>;
}

/**
 * @example
 * const ops = prepareNodeOps({ config, store });
 * const runtime = new Runtime({ ..., audit: ops.audit });
 * await runtime.start();
 * ops.start(runtime);
 */
export function prepareNodeOps(options: { config: ResolvedConfig; store: AuditStore & BackupStore & MetaStore; clock?: () => number; dataDir?: string }): NodeOps {
  const { config, store } = options;
  const dataDir = options.dataDir ?? dataDirFor(config.databaseUrl);
  const key = loadOrCreateNodeKey(dataDir);
  const audit = new AuditTrail({ store, key, ...(options.clock ? { clock: options.clock } : {}) });
  const ops: NodeOps = {
    dataDir,
    audit,
    exporter: null,
    backups: null,
    snapshots: null,
    start(runtime) {
      const failed = (task: string) => (error: Error) => runtime.reportTaskFailure(task, error);
      ops.exporter = new AuditExporter({
        store,
        dir: inDataDir(dataDir, config.audit.exportDir),
        dataDir,
        keepFiles: config.audit.keepFiles,
        intervalMs: config.audit.exportIntervalMs,
        ...(options.clock ? { clock: options.clock } : {}),
        onError: failed('audit-export'),
        onRefused: (problem) =>
          runtime.logger.error({ task: 'audit-export' }, `audit export refused: ${problem}. See docs/operations.md#alert-droverauditexportrefused`),
        onSuperseded: ({ aside, marker }) =>
          runtime.logger.warn({ task: 'audit-export', aside, restore_seq: marker.seq, backup: marker.backup }, 'audit export set aside after a recorded restore; exporting again from record 1'),
      });
      ops.exporter.start();
      ops.snapshots = new SnapshotService({
        store,
        // Per node: nodes sharing a data directory (PostgreSQL, one host) each keep and clean only their own.
        dir: join(dataDir, 'snapshots', runtime.workerId.replace(/[^A-Za-z0-9._-]/g, '_')),
        source: config.databaseUrl,
        nodeId: runtime.workerId,
        auditKeys: () => installationKeys(dataDir),
        signingKey: key,
        audit,
        ...(options.clock ? { clock: options.clock } : {}),
      });
      ops.snapshots.start();
      if (config.backup.everyMs !== null) {
        ops.backups = new BackupSchedule({
          store,
          everyMs: config.backup.everyMs,
          dir: inDataDir(dataDir, config.backup.dir),
          retention: config.backup,
          source: config.databaseUrl,
          nodeId: runtime.workerId,
          // Every key this installation trusts: a restore elsewhere keeps verifying older records.
          auditKeys: () => installationKeys(dataDir),
          audit,
          ...(options.clock ? { clock: options.clock } : {}),
          onSuccess: (result) => {
            runtime.logger.info({ path: result.path, bytes: result.bytes, duration_ms: result.manifest.durationMs, pruned: result.pruned.remove.length }, 'backup taken');
            runtime.reportBackup({ path: result.path, bytes: result.bytes, durationMs: result.manifest.durationMs, at: Date.parse(result.manifest.createdAt) });
          },
          verify: config.backup.verify ? { dataDir, databaseUrl: config.databaseUrl } : null,
          remote: config.backup.remote
            ? {
                url: config.backup.remote.url,
                endpoint: config.backup.remote.endpoint,
                region: config.backup.remote.region,
                forcePathStyle: config.backup.remote.forcePathStyle,
                credentials: credentialsFromFiles(config.backup.remote),
              }
            : null,
          onUploaded: (url) => runtime.logger.info({ url }, 'backup uploaded and checked'),
          onError: (error, task = 'backup') => runtime.reportTaskFailure(task, error),
        });
        ops.backups.start();
      }
    },
    async stop() {
      ops.snapshots?.stop();
      await ops.backups?.stop();
      await ops.exporter?.stop();
    },
  };
  return ops;
}
