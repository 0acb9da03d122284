/**
 * `drover backup pull`: fetch a snapshot from a running node over HTTP and
 * write it as a normal backup directory (`drover backup verify` and
 * `restore` take it as it is).
 *
 * Trust before bytes: the snapshot manifest's signature is checked against
 * the keys this machine trusts (or a fingerprint the operator names) before
 * any chunk is fetched, and a manifest that does not hold together is refused.
 * Each chunk is checked against its SHA-256 as it arrives and fetched again
 * when it is corrupt or cut short; verified chunks are kept in
 * `.pull-<snapshot>.partial/`, so a pull that was interrupted carries on
 * where it stopped. The assembled file is checked against the whole-file
 * hash of the backup's own signed manifest before it appears under its name.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { DroverError, toError } from '../../core/errors.js';
import { backupName, writeManifest } from './manifest.js';
import { judgeBackupKeys, type NewKey } from './manifest-signature.js';
import { SNAPSHOT_FORMAT, type SnapshotManifest } from './snapshots.js';

export interface PullProgress {
  chunksDone: number;
  chunkCount: number;
  bytesDone: number;
  bytesTotal: number;
  /** Chunks found already verified from an earlier, interrupted pull. */
  resumed: number;
}

export interface PullOptions {
  /** The node's base URL, e.g. `https://drover.internal:7070`. */
  from: string;
  /** An admin API key. */
  key: string;
  outDir: string;
  trustedKeys: ReadonlyMap<string, KeyObject>;
  trustFingerprints: readonly string[];
  /** Pull this snapshot instead of taking a new one (or resuming an unfinished pull from the same node). */
  snapshotId?: string;
  /** Chunk size to ask for when taking a new snapshot (default: the node's, 4 MiB). */
  chunkBytes?: number;
  /** Leave the snapshot on the node after a successful pull (default: delete it). */
  keepSnapshot?: boolean;
  /** Attempts per chunk before giving up (default 5). */
  chunkAttempts?: number;
  /** Per request (default 120 s). */
  timeoutMs?: number;
  onProgress?(progress: PullProgress): void;
  /** A chunk was refused (bad hash, short, network) and will be fetched again. */
  onRetry?(chunk: number, reason: string): void;
}

export interface PullResult {
  path: string;
  snapshot: SnapshotManifest;
  /** The signer the manifest was checked with, and keys it carries that were not trusted. */
  signature: string;
  newKeys: NewKey[];
  resumedChunks: number;
}

const PARTIAL_PREFIX = '.pull-';
const STATE_FILE = 'snapshot.json';

/**
 * @example
 * const { path } = await pullSnapshot({ from: 'http://10.0.0.5:7070', key, outDir: './backups', trustedKeys, trustFingerprints: ['ed25519:3f9a0c1d2e3f4a5b'] });
 */
export async function pullSnapshot(options: PullOptions): Promise<PullResult> {
  const base = options.from.replace(/\/+$/, '');
  const http = new SnapshotHttp(base, options.key, options.timeoutMs ?? 120_000);
  mkdirSync(options.outDir, { recursive: true, mode: 0o700 });

  const resumable = options.snapshotId ?? findResumable(options.outDir, base);
  let snapshot: SnapshotManifest | null = null;
  if (resumable) snapshot = await http.manifest(resumable, options.snapshotId !== undefined);
  snapshot ??= await http.create(options.chunkBytes);

  const trust = judgeBackupKeys(snapshot, options.trustedKeys, options.trustFingerprints, '--trust-key');
  if (!trust.signature.ok) throw new DroverError('validation', `refusing snapshot ${snapshot.id}: ${trust.signature.detail}`);
  const incoherent = checkManifest(snapshot);
  if (incoherent) throw new DroverError('validation', `refusing snapshot ${snapshot.id}: ${incoherent}`);

  const partial = join(options.outDir, `${PARTIAL_PREFIX}${snapshot.id}.partial`);
  mkdirSync(partial, { recursive: true, mode: 0o700 });
  writeFileSync(join(partial, STATE_FILE), JSON.stringify({ from: base, snapshot }), { mode: 0o600 });

  const progress: PullProgress = { chunksDone: 0, chunkCount: snapshot.chunkCount, bytesDone: 0, bytesTotal: snapshot.size, resumed: 0 };
  for (let n = 0; n < snapshot.chunkCount; n++) {
    const file = chunkFile(partial, n);
    if (existsSync(file) && sha256(readFileSync(file)) === snapshot.chunks[n]) {
      progress.resumed++;
    } else {
      writePrivate(file, await fetchVerified(http, snapshot, n, options));
    }
    progress.chunksDone++;
    progress.bytesDone += chunkLength(snapshot, n);
    options.onProgress?.(progress);
  }

  const path = assemble(options.outDir, partial, snapshot);
  rmSync(partial, { recursive: true, force: true });
  if (!options.keepSnapshot) await http.delete(snapshot.id).catch(() => undefined);
  return { path, snapshot, signature: trust.signature.detail, newKeys: trust.newKeys, resumedChunks: progress.resumed };
}

/** Why a manifest does not hold together, or null. Its signature is checked separately. */
export function checkManifest(m: SnapshotManifest): string | null {
  if (m.format !== SNAPSHOT_FORMAT) return `unknown format ${JSON.stringify(m.format)} (this drover reads ${SNAPSHOT_FORMAT})`;
  if (!Number.isInteger(m.chunkBytes) || m.chunkBytes <= 0) return 'chunkBytes is not a positive integer';
  if (!Number.isInteger(m.size) || m.size < 0) return 'size is not a whole number';
  const expected = Math.max(1, Math.ceil(m.size / m.chunkBytes));
  if (m.chunkCount !== expected || !Array.isArray(m.chunks) || m.chunks.length !== expected) return `expected ${expected} chunks for ${m.size} bytes, the manifest lists ${m.chunks?.length}`;
  const file = m.backup?.files?.[0];
  if (!file || file.name !== m.file || file.bytes !== m.size || file.sha256 !== m.sha256) return "the snapshot's file does not match its backup manifest";
  if (!/^[\w.-]+$/.test(m.file)) return `unsafe file name ${JSON.stringify(m.file)}`;
  return null;
}

async function fetchVerified(http: SnapshotHttp, snapshot: SnapshotManifest, n: number, options: PullOptions): Promise<Buffer> {
  const attempts = options.chunkAttempts ?? 5;
  let reason = '';
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      const bytes = await http.chunk(snapshot.id, n);
      const length = chunkLength(snapshot, n);
      if (bytes.length !== length) reason = `chunk ${n} is ${bytes.length} bytes, expected ${length} (truncated)`;
      else if (sha256(bytes) !== snapshot.chunks[n]) reason = `chunk ${n} does not match its SHA-256 (corrupted in transit)`;
      else return bytes;
    } catch (error) {
      // The snapshot itself is gone or the key refused: fetching again will not help.
      if (error instanceof DroverError) throw error;
      reason = `chunk ${n}: ${toError(error).message}`;
    }
    options.onRetry?.(n, reason);
    if (attempt < attempts) await new Promise((resolve) => setTimeout(resolve, Math.min(5_000, 200 * 2 ** (attempt - 1))));
  }
  throw new Error(`${reason}; gave up after ${attempts} attempts (run the same command again to resume: verified chunks are kept)`);
}

/** Concatenate the verified chunks into `<backup name>/`, check the whole, and rename it into place. */
function assemble(outDir: string, partial: string, snapshot: SnapshotManifest): string {
  let name = backupName(Date.parse(snapshot.createdAt));
  for (let k = 2; existsSync(join(outDir, name)); k++) name = `${backupName(Date.parse(snapshot.createdAt))}-${k}`;
  const building = join(outDir, `.${name}.partial`);
  rmSync(building, { recursive: true, force: true });
  mkdirSync(building, { recursive: true, mode: 0o700 });
  const hash = createHash('sha256');
  const fd = openSync(join(building, snapshot.file), 'w', 0o600);
  try {
    for (let n = 0; n < snapshot.chunkCount; n++) {
      const bytes = readFileSync(chunkFile(partial, n));
      hash.update(bytes);
      writeSync(fd, bytes);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  const whole = hash.digest('hex');
  if (whole !== snapshot.sha256) {
    rmSync(building, { recursive: true, force: true });
    throw new Error(`the assembled file's SHA-256 is ${whole}, the signed manifest says ${snapshot.sha256}; nothing was written`);
  }
  writeManifest(building, snapshot.backup);
  renameSync(building, join(outDir, name));
  return join(outDir, name);
}

/** An unfinished pull from the same node, newest first. */
function findResumable(outDir: string, base: string): string | null {
  const found: Array<{ id: string; at: number }> = [];
  for (const entry of readdirSync(outDir)) {
    if (!entry.startsWith(PARTIAL_PREFIX) || !entry.endsWith('.partial')) continue;
    try {
      const state = JSON.parse(readFileSync(join(outDir, entry, STATE_FILE), 'utf8')) as { from: string; snapshot: SnapshotManifest };
      if (state.from === base) found.push({ id: state.snapshot.id, at: Date.parse(state.snapshot.createdAt) });
    } catch {
      // Not ours or half-written: ignored.
    }
  }
  return found.sort((a, b) => b.at - a.at)[0]?.id ?? null;
}

const chunkFile = (partial: string, n: number) => join(partial, `chunk-${String(n).padStart(6, '0')}`);
const chunkLength = (m: SnapshotManifest, n: number) => Math.min(m.chunkBytes, m.size - n * m.chunkBytes);
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

function writePrivate(file: string, bytes: Buffer): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, bytes, { mode: 0o600 });
  renameSync(tmp, file);
}

/** The few calls a pull makes; a refused call throws a `DroverError` carrying the node's problem detail. */
class SnapshotHttp {
  constructor(
    private readonly base: string,
    private readonly key: string,
    private readonly timeoutMs: number,
  ) {}

  async create(chunkBytes?: number): Promise<SnapshotManifest> {
    return (await this.#json('POST', '/v1/snapshots', chunkBytes === undefined ? undefined : { chunkBytes })) as SnapshotManifest;
  }

  /** The manifest, or null when the node no longer has it (`required`: throw instead). */
  async manifest(id: string, required: boolean): Promise<SnapshotManifest | null> {
    try {
      return (await this.#json('GET', `/v1/snapshots/${encodeURIComponent(id)}`)) as SnapshotManifest;
    } catch (error) {
      if (!required && error instanceof DroverError && error.code === 'not_found') return null;
      throw error;
    }
  }

  async chunk(id: string, n: number): Promise<Buffer> {
    const response = await this.#fetch('GET', `/v1/snapshots/${encodeURIComponent(id)}/chunks/${n}`);
    return Buffer.from(await response.arrayBuffer());
  }

  async delete(id: string): Promise<void> {
    await this.#fetch('DELETE', `/v1/snapshots/${encodeURIComponent(id)}`);
  }

  async #json(method: string, path: string, body?: unknown): Promise<unknown> {
    const response = await this.#fetch(method, path, body);
    return response.json();
  }

  async #fetch(method: string, path: string, body?: unknown): Promise<Response> {
    let response: Response;
    try {
      response = await fetch(this.base + path, {
        method,
        headers: { authorization: `Bearer ${this.key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      throw new Error(`cannot reach ${this.base} (${toError(error).message})`);
    }
    if (response.ok) return response;
    const text = await response.text().catch(() => '');
    let detail = text;
    try {
      detail = String((JSON.parse(text) as { detail?: unknown }).detail ?? text);
    } catch {
      // Not problem+json (a proxy's page): keep the text.
    }
    // 5xx (the node busy taking the snapshot, its store briefly gone, a proxy): worth another try.
    if (response.status >= 500) throw new Error(`${method} ${path}: ${response.status} ${detail}`);
    const code = response.status === 404 ? 'not_found' : response.status === 401 ? 'unauthorized' : response.status === 403 ? 'forbidden' : response.status === 409 ? 'too_many_snapshots' : 'validation';
    throw new DroverError(code, `${method} ${path}: ${response.status} ${detail}`);
  }
}
