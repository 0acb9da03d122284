/**
 * The object-storage side of `drover backup`: `upload`, `list --remote`,
 * `prune --remote` and `restore --from s3://…` (ops/backup/remote.ts).
 * Credentials come from the AWS SDK's own chain (AWS_ACCESS_KEY_ID /
 * AWS_SECRET_ACCESS_KEY, profiles, instance roles) or from two files.
 */
import type { Command } from 'commander';
import { DroverError } from '../../core/errors.js';
import { credentialsFromFiles, parseS3Url, RemoteBackups } from '../../ops/backup/remote.js';

export interface RemoteFlags {
  endpoint?: string;
  region?: string;
  accessKeyIdFile?: string;
  secretAccessKeyFile?: string;
}

/** Add the flags that say how to reach the object store. */
export function remoteOptions(command: Command): Command {
  return command
    .option('--endpoint <url>', 'S3-compatible endpoint (MinIO, R2, Ceph…); default AWS (env DROVER_BACKUP_S3_ENDPOINT)')
    .option('--region <name>', 'region (default: AWS_REGION, else us-east-1)')
    .option('--access-key-id-file <file>', 'file holding the access key id (default: the AWS SDK credential chain)')
    .option('--secret-access-key-file <file>', 'file holding the secret access key');
}

/**
 * Open the bucket named by an `s3://bucket/prefix` URL.
 *
 * @example
 * const remote = await openRemote('s3://backups/drover', { endpoint: 'http://127.0.0.1:9000' });
 */
export function openRemote(url: string, flags: RemoteFlags): Promise<RemoteBackups> {
  parseS3Url(url);
  const endpoint = flags.endpoint ?? process.env.DROVER_BACKUP_S3_ENDPOINT ?? null;
  return RemoteBackups.open({
    url,
    endpoint,
    region: flags.region ?? process.env.AWS_REGION ?? null,
    credentials: credentialsFromFiles({ accessKeyIdFile: flags.accessKeyIdFile ?? null, secretAccessKeyFile: flags.secretAccessKeyFile ?? null }),
  });
}

/** `s3://bucket/prefix/drover-backup-…` → the bucket URL and the backup's name. */
export function splitBackupUrl(url: string): { base: string; name: string } {
  const trimmed = url.replace(/\/+$/, '');
  const slash = trimmed.lastIndexOf('/');
  const name = trimmed.slice(slash + 1);
  if (slash < 's3://'.length || !name.startsWith('drover-backup-')) {
    throw new DroverError('validation', `${url} does not name a backup; write s3://bucket/prefix/drover-backup-<time> (see drover backup list --remote s3://bucket/prefix)`);
  }
  return { base: trimmed.slice(0, slash), name };
}

export function registerBackupUpload(backup: Command): void {
  remoteOptions(
    backup
      .command('upload <path>')
      .description('copy a backup to S3-compatible object storage and check it there (every file read back against the signed manifest)')
      .requiredOption('--remote <s3url>', 'where: s3://bucket or s3://bucket/prefix'),
  ).action(async (path: string, opts: RemoteFlags & { remote: string }) => {
    const remote = await openRemote(opts.remote, opts);
    try {
      const uploaded = await remote.upload(path);
      process.stdout.write(`uploaded and checked: ${uploaded.url}\n`);
    } finally {
      remote.close();
    }
  });
}
