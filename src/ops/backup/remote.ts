/**
 * Backups that leave the box: a backup directory copied to S3-compatible
 * object storage under `<prefix>/<backup name>/<file>`, checked after the
 * upload by reading every file back and comparing its SHA-256 with the signed
 * manifest, and pruned remotely with the same retention policy as locally.
 *
 * The manifest is written last and deleted first, so a listing only ever
 * counts a backup whose every file is there (the same rule as a local
 * backup directory). The AWS SDK is loaded only when a remote is used: a node
 * without one pays nothing for it.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { DroverError } from '../../core/errors.js';
import { MANIFEST_FILE, readManifest, timeFromName, type BackupManifest } from './manifest.js';
import { planRetention, type BackupEntry, type RetentionPlan, type RetentionPolicy } from './retention.js';

export interface RemoteTarget {
  /** `s3://bucket/prefix` (the prefix may be empty). */
  url: string;
  /** An S3-compatible endpoint (MinIO, R2, Ceph…); default AWS's for `region`. */
  endpoint?: string | null;
  region?: string | null;
  /** Path-style addressing (`endpoint/bucket/key`), which most S3-compatible servers need. Default: true with an endpoint. */
  forcePathStyle?: boolean | null;
  /** Credentials; default the AWS SDK's chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, profiles, instance roles). */
  credentials?: { accessKeyId: string; secretAccessKey: string } | null;
}

export interface RemoteBackup {
  name: string;
  /** `s3://bucket/prefix/name/`. */
  url: string;
  at: number;
}

/** Split `s3://bucket/some/prefix` into bucket and prefix (no leading or trailing slash). */
export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(url);
  if (!m) throw new DroverError('validation', `${JSON.stringify(url)} is not an S3 location; write s3://bucket or s3://bucket/prefix (bucket names are lower-case letters, digits, dots and hyphens)`);
  return { bucket: m[1]!, prefix: (m[2] ?? '').replace(/^\/+|\/+$/g, '') };
}

/** Credentials from files (Docker/Kubernetes secrets): the key id and the secret, each alone in its file. */
export function credentialsFromFiles(files: { accessKeyIdFile?: string | null; secretAccessKeyFile?: string | null }): RemoteTarget['credentials'] {
  if (!files.accessKeyIdFile && !files.secretAccessKeyFile) return null;
  if (!files.accessKeyIdFile || !files.secretAccessKeyFile) throw new DroverError('config_invalid', 'backup.remote: give both accessKeyIdFile and secretAccessKeyFile, or neither (then the AWS SDK finds credentials itself)');
  return { accessKeyId: readFileSync(files.accessKeyIdFile, 'utf8').trim(), secretAccessKey: readFileSync(files.secretAccessKeyFile, 'utf8').trim() };
}

/**
 * @example
 * const remote = await RemoteBackups.open({ url: 's3://backups/drover', endpoint: 'http://127.0.0.1:9000' });
 * await remote.upload('./data/backups/drover-backup-2026-12-04T03-10-00-000Z');
 */
export class RemoteBackups {
  private constructor(
    private readonly client: S3Client,
    private readonly sdk: typeof import('@aws-sdk/client-s3'),
    private readonly lib: typeof import('@aws-sdk/lib-storage'),
    readonly bucket: string,
    readonly prefix: string,
  ) {}

  static async open(target: RemoteTarget): Promise<RemoteBackups> {
    const { bucket, prefix } = parseS3Url(target.url);
    const [sdk, lib] = await Promise.all([import('@aws-sdk/client-s3'), import('@aws-sdk/lib-storage')]);
    const client = new sdk.S3Client({
      region: target.region ?? 'us-east-1',
      ...(target.endpoint ? { endpoint: target.endpoint } : {}),
      forcePathStyle: target.forcePathStyle ?? Boolean(target.endpoint),
      ...(target.credentials ? { credentials: target.credentials } : {}),
      // Bounded, like every other outside call: a black-holed endpoint fails the upload, it does not hang the schedule.
      requestHandler: { requestTimeout: 120_000, connectionTimeout: 10_000 },
      maxAttempts: 4,
    });
    return new RemoteBackups(client, sdk, lib, bucket, prefix);
  }

  close(): void {
    this.client.destroy();
  }

  #key(...parts: string[]): string {
    return [this.prefix, ...parts].filter(Boolean).join('/');
  }

  url(name: string): string {
    return `s3://${this.bucket}/${this.#key(name)}/`;
  }

  /**
   * Copy a local backup up (store files first, the manifest last), then read
   * every file back and check its SHA-256 against the manifest.
   */
  async upload(dir: string): Promise<RemoteBackup> {
    const manifest = readManifest(dir);
    const name = dir.replace(/\/+$/, '').split('/').pop()!;
    if (timeFromName(name.replace(/-\d+$/, '')) === null) throw new DroverError('validation', `${dir} is not a drover backup directory (drover-backup-<time>)`);
    for (const file of manifest.files) {
      await new this.lib.Upload({ client: this.client, params: { Bucket: this.bucket, Key: this.#key(name, file.name), Body: createReadStream(join(dir, file.name)) } }).done();
    }
    await this.client.send(new this.sdk.PutObjectCommand({ Bucket: this.bucket, Key: this.#key(name, MANIFEST_FILE), Body: readFileSync(join(dir, MANIFEST_FILE)), ContentType: 'application/json' }));
    await this.verifyUploaded(name, manifest);
    return { name, url: this.url(name), at: timeFromName(name.replace(/-\d+$/, ''))! };
  }

  /** Read each file of a remote backup back and compare sizes and hashes with `manifest`; throws on the first difference. */
  async verifyUploaded(name: string, manifest: BackupManifest): Promise<void> {
    for (const file of manifest.files) {
      const hash = createHash('sha256');
      let bytes = 0;
      const body = await this.#get(this.#key(name, file.name));
      for await (const chunk of body) {
        hash.update(chunk as Buffer);
        bytes += (chunk as Buffer).length;
      }
      const sha = hash.digest('hex');
      if (bytes !== file.bytes || sha !== file.sha256) {
        throw new Error(`the uploaded ${this.url(name)}${file.name} is ${bytes} bytes with SHA-256 ${sha}; the manifest says ${file.bytes} bytes, ${file.sha256}. The remote copy is not good: check the bucket and upload again`);
      }
    }
  }

  /** Complete remote backups (those with a manifest), newest first. */
  async list(): Promise<RemoteBackup[]> {
    const found: RemoteBackup[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(new this.sdk.ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix ? `${this.prefix}/` : '', ContinuationToken: token }));
      for (const object of page.Contents ?? []) {
        const rest = (object.Key ?? '').slice(this.prefix ? this.prefix.length + 1 : 0).split('/');
        if (rest.length !== 2 || rest[1] !== MANIFEST_FILE) continue;
        const at = timeFromName(rest[0]!.replace(/-\d+$/, ''));
        if (at !== null) found.push({ name: rest[0]!, url: this.url(rest[0]!), at });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return found.sort((a, b) => b.at - a.at || (a.name < b.name ? 1 : -1));
  }

  /** Download a remote backup into `<toDir>/<name>/` (written aside, renamed when whole); returns its path. */
  async download(name: string, toDir: string): Promise<string> {
    mkdirSync(toDir, { recursive: true, mode: 0o700 });
    const partial = join(toDir, `.${name}.partial`);
    rmSync(partial, { recursive: true, force: true });
    mkdirSync(partial, { recursive: true, mode: 0o700 });
    const manifestBody = await this.#get(this.#key(name, MANIFEST_FILE)).catch((error: unknown) => {
      throw new DroverError('not_found', `no complete backup at ${this.url(name)} (${(error as Error).message})`);
    });
    await pipeline(manifestBody, createWriteStream(join(partial, MANIFEST_FILE), { mode: 0o600 }));
    const manifest = readManifest(partial);
    for (const file of manifest.files) {
      if (!/^[\w.-]+$/.test(file.name)) throw new DroverError('validation', `the manifest names an unsafe file ${JSON.stringify(file.name)}`);
      await pipeline(await this.#get(this.#key(name, file.name)), createWriteStream(join(partial, file.name), { mode: 0o600 }));
    }
    const path = join(toDir, name);
    rmSync(path, { recursive: true, force: true });
    renameSync(partial, path);
    return path;
  }

  /** Apply retention to the remote backups (dry run unless `dryRun: false`); the manifest goes first. */
  async prune(policy: RetentionPolicy, options: { dryRun: boolean }): Promise<Omit<RetentionPlan, 'ignored'>> {
    const backups: BackupEntry[] = (await this.list()).map((b) => ({ name: b.name, path: b.url, at: b.at }));
    const plan = planRetention(backups, policy);
    if (options.dryRun) return plan;
    for (const entry of plan.remove) {
      await this.client.send(new this.sdk.DeleteObjectCommand({ Bucket: this.bucket, Key: this.#key(entry.name, MANIFEST_FILE) }));
      const listed = await this.client.send(new this.sdk.ListObjectsV2Command({ Bucket: this.bucket, Prefix: `${this.#key(entry.name)}/` }));
      for (const object of listed.Contents ?? []) await this.client.send(new this.sdk.DeleteObjectCommand({ Bucket: this.bucket, Key: object.Key! }));
    }
    return plan;
  }

  async #get(key: string): Promise<Readable> {
    const answer = await this.client.send(new this.sdk.GetObjectCommand({ Bucket: this.bucket, Key: key }));
    return answer.Body as Readable;
  }
}
