/**
 * The audit export: records appended as JSON lines to one file per day
 * (`audit-YYYY-MM-DD.jsonl`, by the day they were exported, so the files in
 * name order are in record order), in a directory outside the store. Only the
 * newest `keepFiles` files are kept. A copy outside the database is what
 * shows a trail truncated in the store, and it survives losing the database.
 *
 * The exporter resumes from the last line of the newest file. If the store no
 * longer holds that record with that hash, the trail in the store was cut
 * short or rewritten. Only a restore recorded by `drover backup restore` (its
 * marker file, see restore-marker.ts) explains that: then the files so far
 * are moved to `superseded-<time>/` and the export starts again from record 1.
 * Anything else is refused: nothing more is exported, the exporter reports
 * `refused` (metric, status, an error log line) until an operator acts, and
 * the old export stays where it is as the evidence.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, truncateSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditRecord } from '../../core/types.js';
import { BackgroundTask } from '../../runtime/background-task.js';
import type { AuditStore } from '../../store/engine.js';
import { consumeRestoreMarker, readRestoreMarker, type RestoreMarker } from './restore-marker.js';

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
  store: AuditStore;
  dir: string;
  /** Where `drover backup restore` leaves its marker (the data directory); without it no supersede is allowed. */
  dataDir?: string;
  keepFiles: number;
  intervalMs: number;
  clock?: () => number;
  onError(error: Error): void;
  /** The export stopped: the store no longer holds what was exported and no restore explains it. Called once per episode. */
  onRefused?(problem: string): void;
  /** A recorded restore set the old export aside (into `aside`). */
  onSuperseded?(info: { aside: string | null; marker: RestoreMarker }): void;
}

/** What `GET /v1/status` and `drover_audit_export_state` report. */
export interface AuditExportStatus {
  state: 'ok' | 'refused';
  /** Newest record in the export (0 before the first). */
  exportedSeq: number;
  /** Why the export is refused; null when ok. */
  problem: string | null;
  /** When it was first refused (ISO 8601); null when ok. */
  refusedSince: string | null;
  /** Exports set aside by a recorded restore since this process started. */
  superseded: number;
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
  /** The newest exported record, or null before the first flush looked (and while refused, so each flush looks again). */
  #last: { seq: number; hash: string } | null = null;
  #refused: { problem: string; since: string } | null = null;
  #exportedSeq = 0;
  #superseded = 0;

  constructor(options: AuditExporterOptions) {
    this.#options = options;
    this.dir = options.dir;
    this.#clock = options.clock ?? Date.now;
    this.#task = new BackgroundTask({ name: 'audit-export', intervalMs: options.intervalMs, run: () => this.flush().then(() => undefined), onError: options.onError });
  }

  /** Export at once (a restart shows a broken export right away), then every `intervalMs`. */
  start(): void {
    this.#task.start();
    void this.#task.trigger();
  }

  /** Stop the schedule and export what is left. */
  async stop(): Promise<void> {
    await this.#task.stop();
    await this.flush().catch((error: unknown) => this.#options.onError(error instanceof Error ? error : new Error(String(error))));
  }

  status(): AuditExportStatus {
    return {
      state: this.#refused ? 'refused' : 'ok',
      exportedSeq: this.#exportedSeq,
      problem: this.#refused?.problem ?? null,
      refusedSince: this.#refused?.since ?? null,
      superseded: this.#superseded,
    };
  }

  /** Append every record not yet exported; returns how many were written (0 while refused). */
  async flush(): Promise<number> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const store = this.#options.store;
    this.#last ??= this.#resumePoint();
    const dataDir = this.#options.dataDir;
    const marker = dataDir ? readRestoreMarker(dataDir) : null;
    if (this.#last.seq > 0) {
      const [same] = await store.readAudit({ after: this.#last.seq - 1, limit: 1 });
      if (!same || same.seq !== this.#last.seq || same.hash !== this.#last.hash) {
        if (marker && dataDir && (await this.#holds(marker))) {
          const aside = this.#supersede();
          consumeRestoreMarker(dataDir, aside);
          this.#superseded++;
          this.#options.onSuperseded?.({ aside, marker });
        } else {
          const [newest] = await store.listAudit({ limit: 1 });
          const problem = same && same.seq === this.#last.seq
            ? `record ${this.#last.seq} in the store differs from the exported copy: the store's trail was rewritten`
            : `the store no longer holds record ${this.#last.seq}, the last one exported (the store's trail ends at ${newest?.seq ?? 0}): records were removed from the store's trail`;
          this.#exportedSeq = this.#last.seq;
          this.#refuse(`${problem}; no restore was recorded (${dataDir ? `no valid ${dataDir}/audit-restored.json` : 'no data directory'}), so the export in ${this.dir} is kept as it is and nothing more is exported`);
          this.#last = null;
          return 0;
        }
      }
    }
    // A restore that did not break continuity (or was already handled) leaves nothing to explain later.
    if (marker && dataDir) consumeRestoreMarker(dataDir, null);
    this.#refused = null;
    let written = 0;
    for (;;) {
      const records = await store.readAudit({ after: this.#last.seq, limit: PAGE });
      if (records.length === 0) break;
      this.#append(records);
      written += records.length;
      const newest = records[records.length - 1]!;
      this.#last = { seq: newest.seq, hash: newest.hash };
    }
    this.#exportedSeq = this.#last.seq;
    this.#prune();
    return written;
  }

  /** Does the store hold the record the restore marker names? */
  async #holds(marker: RestoreMarker): Promise<boolean> {
    const [record] = await this.#options.store.readAudit({ after: marker.seq - 1, limit: 1 });
    return record !== undefined && record.seq === marker.seq && record.hash === marker.hash && record.action === 'backup.restore';
  }

  #refuse(problem: string): void {
    if (this.#refused) {
      this.#refused.problem = problem;
      return;
    }
    this.#refused = { problem, since: new Date(this.#clock()).toISOString() };
    this.#options.onRefused?.(problem);
  }

  #append(records: readonly AuditRecord[]): void {
    const day = new Date(this.#clock()).toISOString().slice(0, 10);
    const fd = openSync(join(this.dir, `audit-${day}.jsonl`), 'a', 0o600);
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

  /** Move the export files aside; returns the directory they went to (null when there were none). */
  #supersede(): string | null {
    const files = exportFiles(this.dir);
    let aside: string | null = null;
    if (files.length > 0) {
      aside = join(this.dir, `superseded-${new Date(this.#clock()).toISOString().replace(/[:.]/g, '-')}`);
      mkdirSync(aside, { recursive: true, mode: 0o700 });
      for (const file of files) renameSync(file, join(aside, file.slice(this.dir.length + 1)));
    }
    this.#last = { seq: 0, hash: '' };
    return aside;
  }

  #prune(): void {
    const files = exportFiles(this.dir);
    const keep = Math.max(1, this.#options.keepFiles);
    for (const file of files.slice(0, Math.max(0, files.length - keep))) rmSync(file, { force: true });
  }
}
