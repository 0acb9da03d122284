/**
 * The audit export: records appended as JSON lines to one file per day
 * (`audit-YYYY-MM-DD.jsonl`, by the day they were exported, so the files in
 * name order are in record order), in a directory outside the store. Only the
 * newest `keepFiles` files are kept. A copy outside the database is what
 * shows a trail truncated in the store, and it survives losing the database.
 *
 * The exporter resumes from the last line of the newest file. If the store no
 * longer holds that record with that hash (it was restored from a backup and
 * has gone back in time), the files so far are moved to
 * `superseded-<time>/` and the export starts again from record 1.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, truncateSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditRecord } from '../../core/types.js';
import { BackgroundTask } from '../../runtime/background-task.js';
import type { StorageEngine } from '../../store/engine.js';

const FILE_RE = /^audit-(\d{4}-\d{2}-\d{2})\.jsonl$/;
const PAGE = 1000;

/** The export files in `dir`, oldest first. */
export function exportFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => FILE_RE.test(name))
    .sort()
    .map((name) => join(dir, name));
}

/** One record as an export line (fixed key order, for people reading the files). */
export function recordLine(record: AuditRecord): string {
  const { seq, time, actor, requestId, action, target, before, after, prevHash, hash, signer, signature } = record;
  return JSON.stringify({ seq, time, actor, requestId, action, target, before, after, prevHash, hash, signer, signature });
}

export interface AuditExporterOptions {
  store: StorageEngine;
  dir: string;
  keepFiles: number;
  intervalMs: number;
  clock?: () => number;
  onError(error: Error): void;
}

/**
 * @example
 * const exporter = new AuditExporter({ store, dir: '/var/lib/drover/audit', keepFiles: 30, intervalMs: 60_000, onError });
 * exporter.start();
 * await exporter.stop(); // flushes what is left
 */
export class AuditExporter {
  readonly dir: string;
  readonly #options: AuditExporterOptions;
  readonly #task: BackgroundTask;
  readonly #clock: () => number;
  /** The newest exported record, or null before the first flush looked. */
  #last: { seq: number; hash: string } | null = null;

  constructor(options: AuditExporterOptions) {
    this.#options = options;
    this.dir = options.dir;
    this.#clock = options.clock ?? Date.now;
    this.#task = new BackgroundTask({ name: 'audit-export', intervalMs: options.intervalMs, run: () => this.flush().then(() => undefined), onError: options.onError });
  }

  start(): void {
    this.#task.start();
  }

  /** Stop the schedule and export what is left. */
  async stop(): Promise<void> {
    await this.#task.stop();
    await this.flush().catch((error: unknown) => this.#options.onError(error instanceof Error ? error : new Error(String(error))));
  }

  /** Append every record not yet exported; returns how many were written. */
  async flush(): Promise<number> {
    mkdirSync(this.dir, { recursive: true });
    const store = this.#options.store;
    this.#last ??= this.#resumePoint();
    if (this.#last.seq > 0) {
      const [same] = await store.readAudit({ after: this.#last.seq - 1, limit: 1 });
      if (!same || same.seq !== this.#last.seq || same.hash !== this.#last.hash) this.#supersede();
    }
    let written = 0;
    for (;;) {
      const records = await store.readAudit({ after: this.#last.seq, limit: PAGE });
      if (records.length === 0) break;
      this.#append(records);
      written += records.length;
      const newest = records[records.length - 1]!;
      this.#last = { seq: newest.seq, hash: newest.hash };
    }
    this.#prune();
    return written;
  }

  #append(records: readonly AuditRecord[]): void {
    const day = new Date(this.#clock()).toISOString().slice(0, 10);
    const fd = openSync(join(this.dir, `audit-${day}.jsonl`), 'a', 0o640);
    try {
      writeSync(fd, records.map((r) => `${recordLine(r)}\n`).join(''));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  /** The last exported record, repairing a line cut short by a crash mid-append. */
  #resumePoint(): { seq: number; hash: string } {
    for (const file of exportFiles(this.dir).reverse()) {
      if (statSync(file).size === 0) continue;
      let text = readFileSync(file, 'utf8');
      if (!text.endsWith('\n')) {
        const keep = text.lastIndexOf('\n') + 1;
        truncateSync(file, Buffer.byteLength(text.slice(0, keep)));
        text = text.slice(0, keep);
      }
      const lines = text.split('\n').filter((line) => line.trim() !== '');
      const last = lines[lines.length - 1];
      if (!last) continue;
      try {
        const record = JSON.parse(last) as AuditRecord;
        if (Number.isSafeInteger(record.seq) && typeof record.hash === 'string') return { seq: record.seq, hash: record.hash };
      } catch {
        // An unreadable line: start a fresh export below rather than build on it.
      }
      this.#supersede();
      return { seq: 0, hash: '' };
    }
    return { seq: 0, hash: '' };
  }

  #supersede(): void {
    const files = exportFiles(this.dir);
    if (files.length > 0) {
      const aside = join(this.dir, `superseded-${new Date(this.#clock()).toISOString().replace(/[:.]/g, '-')}`);
      mkdirSync(aside, { recursive: true });
      for (const file of files) renameSync(file, join(aside, file.slice(this.dir.length + 1)));
    }
    this.#last = { seq: 0, hash: '' };
  }

  #prune(): void {
    const files = exportFiles(this.dir);
    const keep = Math.max(1, this.#options.keepFiles);
    for (const file of files.slice(0, Math.max(0, files.length - keep))) rmSync(file, { force: true });
  }
}
