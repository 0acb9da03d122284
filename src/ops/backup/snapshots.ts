/**
 * Snapshots over HTTP: a consistent backup taken while the node serves, kept
 * for a while in the data directory and handed out in fixed-size chunks, so a
 * copy can leave the box (or seed a new node) without shell access.
 *
 * The snapshot manifest lists the SHA-256 of every chunk and of the whole
 * file, carries the backup's own signed manifest, and is itself signed with
 * the node's audit key: a puller checks the signature before it downloads,
 * each chunk as it arrives (and fetches a bad one again), and the whole file
 * at the end against the backup manifest. A snapshot is a backup with an
 * expiry; it does not count as the installation's last backup (the backup
 * age alert watches real backups).
 */
import { randomBytes } from 'node:crypto';
import { createHash } from 'node:crypto';
import { chmodSync, createReadStream, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { DroverError } from '../../core/errors.js';
import type { BackupStore, MetaStore } from '../../store/engine.js';
import type { AuditTrail } from '../audit/audit-trail.js';
import type { NodeKey } from '../audit/node-key.js';
import { takeBackup } from './create.js';
import type { BackupManifest } from './manifest.js';
import { signManifest, type ManifestSignature } from './manifest-signature.js';

export const SNAPSHOT_FORMAT = 'drover-snapshot/1';
/** 4 MiB: large enough that a 10 GB store is 2,500 requests, small enough to re-fetch cheaply. */
export const DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024;
/** Bounds on the chunk size a caller may ask for. */
export const MIN_CHUNK_BYTES = 64 * 1024;
export const MAX_CHUNK_BYTES = 64 * 1024 * 1024;
export const DEFAULT_SNAPSHOT_TTL_MS = 60 * 60_000;
/** Snapshots kept at once; each is a full copy of the store on this node's disk. */
export const MAX_SNAPSHOTS = 2;

export interface SnapshotManifest {
  format: typeof SNAPSHOT_FORMAT;
  id: string;
  engine: BackupManifest['engine'];
  schemaVersion: number;
  createdAt: string;
  expiresAt: string;
  /** The store file's name in the backup (what `drover backup pull` writes). */
  file: string;
  size: number;
  chunkBytes: number;
  chunkCount: number;
  /** SHA-256 (hex) of each chunk, in order. */
  chunks: string[];
  /** SHA-256 (hex) of the whole file: the same as the file hash in the backup manifest. */
  sha256: string;
  /** The backup's own manifest, signed when it was taken: what `drover backup verify` checks. */
  backup: BackupManifest;
  /** The signing key's public half, for `judgeBackupKeys` (candidates only; see manifest-signature.ts). */
  auditKeys: Array<{ keyId: string; publicKey: string }>;
  signature?: ManifestSignature;
}

export interface SnapshotServiceOptions {
  store: BackupStore & MetaStore;
  /** `<data dir>/snapshots/<node id>`: private; what an earlier process left there is deleted once older than the TTL. */
  dir: string;
  source: string;
  nodeId: string;
  auditKeys: () => Array<{ keyId: string; publicKey: string }>;
  signingKey: NodeKey;
  audit: AuditTrail;
  clock?: () => number;
  ttlMs?: number;
  chunkBytes?: number;
}

interface Entry {
  state: 'creating' | 'ready';
  manifest: SnapshotManifest | null;
  path: string | null;
  expiresAt: number;
}

/**
 * @example
 * const snapshots = new SnapshotService({ store, dir: join(dataDir, 'snapshots'), ... });
 * const manifest = await snapshots.create('key_abc');
 * const { bytes, sha256 } = await snapshots.chunk(manifest.id, 0);
 */
export class SnapshotService {
  readonly #entries = new Map<string, Entry>();
  readonly #clock: () => number;
  readonly #ttlMs: number;
  readonly #chunkBytes: number;
  #sweeper: NodeJS.Timeout | null = null;

  constructor(private readonly options: SnapshotServiceOptions) {
    this.#clock = options.clock ?? Date.now;
    this.#ttlMs = options.ttlMs ?? DEFAULT_SNAPSHOT_TTL_MS;
    this.#chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  }

  /** Start expiring (and clear out what an earlier process left, once it is older than the TTL). */
  start(): void {
    mkdirSync(this.options.dir, { recursive: true, mode: 0o700 });
    this.sweep();
    chmodSync(dirname(this.options.dir), 0o700);
    this.#sweeper = setInterval(() => this.sweep(), Math.min(60_000, this.#ttlMs));
    this.#sweeper.unref();
  }

  stop(): void {
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#sweeper = null;
  }

  /** Take a snapshot now (while the node serves); answers its signed manifest. */
  async create(actor: string, chunkBytes = this.#chunkBytes): Promise<SnapshotManifest> {
    this.sweep();
    if (this.#entries.size >= MAX_SNAPSHOTS) {
      throw new DroverError('too_many_snapshots', `${this.#entries.size} snapshots are already kept on this node (at most ${MAX_SNAPSHOTS}); delete one (DELETE /v1/snapshots/:id) or wait for it to expire`, {
        extensions: { snapshots: [...this.#entries.keys()] },
      });
    }
    const id = `snap_${randomBytes(12).toString('hex')}`;
    const entry: Entry = { state: 'creating', manifest: null, path: null, expiresAt: Number.POSITIVE_INFINITY };
    this.#entries.set(id, entry);
    try {
      const o = this.options;
      const result = await takeBackup({
        store: o.store,
        outDir: join(o.dir, id),
        source: o.source,
        nodeId: o.nodeId,
        auditKeys: o.auditKeys(),
        signingKey: o.signingKey,
        clock: this.#clock,
        recordSuccess: false,
        audit: { trail: o.audit, actor },
      });
      const file = result.manifest.files[0]!;
      const path = join(result.path, file.name);
      const chunks = await chunkHashes(path, chunkBytes);
      const now = this.#clock();
      entry.expiresAt = now + this.#ttlMs;
      entry.path = path;
      entry.manifest = signManifest<SnapshotManifest>(
        {
          format: SNAPSHOT_FORMAT,
          id,
          engine: result.manifest.engine,
          schemaVersion: result.manifest.schemaVersion,
          createdAt: result.manifest.createdAt,
          expiresAt: new Date(entry.expiresAt).toISOString(),
          file: file.name,
          size: file.bytes,
          chunkBytes,
          chunkCount: chunks.length,
          chunks,
          sha256: file.sha256,
          backup: result.manifest,
          auditKeys: [{ keyId: o.signingKey.keyId, publicKey: o.signingKey.publicPem }],
        },
        o.signingKey,
      );
      entry.state = 'ready';
      return entry.manifest;
    } catch (error) {
      this.#entries.delete(id);
      rmSync(join(this.options.dir, id), { recursive: true, force: true });
      throw error;
    }
  }

  /** The manifest of a snapshot that is ready. */
  manifest(id: string): SnapshotManifest {
    return this.#ready(id).manifest!;
  }

  /** Chunk `n` (0-based) of a snapshot, with its SHA-256 (hex). */
  async chunk(id: string, n: number): Promise<{ bytes: Buffer; sha256: string }> {
    const entry = this.#ready(id);
    const manifest = entry.manifest!;
    if (!Number.isInteger(n) || n < 0 || n >= manifest.chunkCount) {
      throw new DroverError('out_of_range', `chunk ${n} is out of range: snapshot ${id} has chunks 0 to ${manifest.chunkCount - 1}`, {
        extensions: { chunkCount: manifest.chunkCount },
      });
    }
    const offset = n * manifest.chunkBytes;
    const length = Math.min(manifest.chunkBytes, manifest.size - offset);
    const bytes = Buffer.alloc(length);
    const handle = await open(entry.path!, 'r');
    try {
      let read = 0;
      while (read < length) {
        const { bytesRead } = await handle.read(bytes, read, length - read, offset + read);
        if (bytesRead === 0) break;
        read += bytesRead;
      }
      if (read !== length) throw new Error(`snapshot ${id} file is shorter than its manifest says`);
    } finally {
      await handle.close();
    }
    return { bytes, sha256: manifest.chunks[n]! };
  }

  /** Delete a snapshot now; false when there is none by that id. */
  delete(id: string): boolean {
    const entry = this.#entries.get(id);
    if (!entry || entry.state === 'creating') return false;
    this.#remove(id);
    return true;
  }

  /** Snapshots kept now (ready or being taken). */
  list(): Array<{ id: string; state: Entry['state']; expiresAt: string | null; size: number | null }> {
    return [...this.#entries].map(([id, e]) => ({
      id,
      state: e.state,
      expiresAt: Number.isFinite(e.expiresAt) ? new Date(e.expiresAt).toISOString() : null,
      size: e.manifest?.size ?? null,
    }));
  }

  /**
   * Delete expired snapshots, and leftovers (of a failed one, or of an earlier process) older than the
   * TTL by their files' age: another process sharing the directory may be writing a young one right now.
   */
  sweep(): void {
    const now = this.#clock();
    for (const [id, entry] of this.#entries) if (entry.state === 'ready' && entry.expiresAt <= now) this.#remove(id);
    let names: string[] = [];
    try {
      names = readdirSync(this.options.dir);
    } catch {
      return;
    }
    const oldest = Date.now() - this.#ttlMs;
    for (const name of names) {
      if (this.#entries.has(name)) continue;
      const path = join(this.options.dir, name);
      const modified = statSync(path, { throwIfNoEntry: false })?.mtimeMs;
      if (modified !== undefined && modified < oldest) rmSync(path, { recursive: true, force: true });
    }
  }

  #ready(id: string): Entry {
    const entry = this.#entries.get(id);
    if (entry && entry.state === 'ready' && entry.expiresAt <= this.#clock()) this.#remove(id);
    const live = this.#entries.get(id);
    if (!live) throw new DroverError('not_found', `no snapshot ${id} on this node (it expired, was deleted, or was taken on another node: pull from the node that took it)`);
    if (live.state === 'creating') throw new DroverError('snapshot_not_ready', `snapshot ${id} is still being taken; try again shortly`, { retryAfterSeconds: 2 });
    return live;
  }

  #remove(id: string): void {
    this.#entries.delete(id);
    rmSync(join(this.options.dir, id), { recursive: true, force: true });
  }
}

/** SHA-256 (hex) of each `size`-byte chunk of a file, streamed once. */
export async function chunkHashes(file: string, size: number): Promise<string[]> {
  const hashes: string[] = [];
  let hash = createHash('sha256');
  let filled = 0;
  for await (const data of createReadStream(file, { highWaterMark: 1 << 20 })) {
    let buf = data as Buffer;
    while (buf.length > 0) {
      const take = Math.min(size - filled, buf.length);
      hash.update(buf.subarray(0, take));
      filled += take;
      buf = buf.subarray(take);
      if (filled === size) {
        hashes.push(hash.digest('hex'));
        hash = createHash('sha256');
        filled = 0;
      }
    }
  }
  if (filled > 0 || hashes.length === 0) hashes.push(hash.digest('hex'));
  return hashes;
}
