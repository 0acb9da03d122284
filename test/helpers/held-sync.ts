/** A group commit's deferred sync (src/store/sqlite/group-commit.ts `DeferredSync`) that returns only when the test says so. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { GroupCommit, type DeferredSync, type SubmitMode } from '../../src/store/sqlite/group-commit.js';

export class HeldSync implements DeferredSync {
  calls: Array<{ resolve(): void; reject(error: unknown): void }> = [];
  /** `slots`: how many may be out at once (the group commit's default, one, when not given). */
  constructor(
    private readonly db: Database.Database,
    readonly slots?: number,
  ) {}
  defer(): void {
    this.db.pragma('synchronous = NORMAL');
  }
  restore(): void {
    this.db.pragma('synchronous = FULL');
  }
  sync(): Promise<void> {
    return new Promise((resolve, reject) => this.calls.push({ resolve, reject }));
  }
}

/** A WAL database at FULL in a fresh directory, with one table `t (v INTEGER NOT NULL UNIQUE)`. */
export function walTestDb(prefix: string): { dir: string; db: Database.Database } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const db = new Database(join(dir, 'd.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE t (v INTEGER NOT NULL UNIQUE)');
  return { dir, db };
}

/** Resolves after the current event-loop turn (a group commit flushes on setImmediate). */
export const turn = () => new Promise((resolve) => setImmediate(resolve));

export interface HeldGroupCommit {
  db: Database.Database;
  held: HeldSync;
  commit: GroupCommit<number[]>;
  committed: number[][];
  durable: number[][];
  /** Inserts `v` into `t`, its own effect; `mode` as `GroupCommit.submit`'s (default: a feeding write, an enqueue). */
  insert(v: number, mode?: SubmitMode): Promise<number>;
  close(): Promise<void>;
}

/** A group commit on `walTestDb` with a `HeldSync`: what it committed, what became durable, an insert, and `close`. */
export function heldGroupCommit(prefix: string, slots?: number): HeldGroupCommit {
  const { dir, db } = walTestDb(prefix);
  const held = new HeldSync(db, slots);
  const committed: number[][] = [];
  const durable: number[][] = [];
  const commit = new GroupCommit<number[]>(
    db,
    { create: () => [], merge: (into, from) => void into.push(...from), committed: (e) => void committed.push(e), durable: (e) => void durable.push(e) },
    held,
  );
  const insert = (v: number, mode?: SubmitMode) =>
    commit.submit((own) => {
      db.prepare('INSERT INTO t (v) VALUES (?)').run(v);
      own.push(v);
      return v;
    }, mode);
  const close = async () => {
    for (const call of held.calls) call.resolve();
    await commit.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return { db, held, commit, committed, durable, insert, close };
}
