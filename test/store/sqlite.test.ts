/**
 * The SQLite engine: the shared conformance suite on a real file in a fresh
 * temporary directory per test, plus what only this engine promises (WAL and
 * synchronous=FULL, the single-owner pidfile lock, group commit).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { QueueFullError, SchemaTooNewError } from '../../src/core/errors.js';
import type { NewJob } from '../../src/core/types.js';
import { GroupCommit } from '../../src/store/sqlite/group-commit.js';
import { loadMigrations } from '../../src/store/sqlite/migrator.js';
import { LOW_MEMORY_SQLITE_CACHE_KIB, openStore } from '../../src/store/open.js';
import { openSqliteEngine, type SqliteEngine } from '../../src/store/sqlite/sqlite-engine.js';
import { describeStoreConformance, type StoreFactory } from './conformance.js';
import { describeLeaseOrderConformance } from './lease-order-conformance.js';
import { describeLeaseCapsConformance } from './lease-caps-conformance.js';

const tempDirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'drover-sqlite-'));
  tempDirs.push(dir);
  return dir;
}

const sqliteFactory: StoreFactory = async (clock) => {
  const dir = mkdtempSync(join(tmpdir(), 'drover-conf-'));
  const engine = await openSqliteEngine({ path: join(dir, 'drover.db'), clock });
  return {
    engine,
    cleanup: async () => {
      await engine.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
};
describeStoreConformance('sqlite', sqliteFactory);
describeLeaseOrderConformance('sqlite', sqliteFactory);
describeLeaseCapsConformance('sqlite', sqliteFactory);

describe('sqlite engine', () => {
  const open: SqliteEngine[] = [];
  let dir: string;
  let dbPath: string;

  const openEngine = async (options: { lock?: boolean } = {}) => {
    const engine = await openSqliteEngine({ path: dbPath, ...options });
    open.push(engine);
    return engine;
  };

  const job = (over: Partial<NewJob> = {}): NewJob => ({
    handler: 'h',
    queue: 'default',
    payload: null,
    priority: 0,
    runAt: Date.now(),
    maxAttempts: 3,
    ...over,
  });

  beforeEach(() => {
    dir = tempDir();
    dbPath = join(dir, 'nested', 'dir', 'drover.db');
  });

  afterEach(async () => {
    // close() is idempotent: tests may have closed some already.
    await Promise.all(open.splice(0).map((engine) => engine.close()));
    for (const d of tempDirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('creates the parent directory and runs WAL with synchronous=FULL', async () => {
    const engine = await openEngine();
    expect(existsSync(dbPath)).toBe(true);
    expect(engine.settings()).toEqual({ journalMode: 'wal', synchronous: 'FULL', foreignKeys: true, busyTimeoutMs: 5000, cacheKib: 16_000 });
    expect(engine.capabilities).toEqual({ engine: 'sqlite', multiNode: false, crossProcessNotify: false, groupCommit: true, sharedRateLimits: false, leaseAtIntake: false });
    expect(engine.path).toBe(dbPath);
  });

  it('a low-memory node (drover start --low-memory) keeps a 1 MiB page cache, not the driver\'s 16,000 KiB', async () => {
    const engine = (await openStore(dbPath, { lowMemory: true })) as SqliteEngine;
    open.push(engine);
    expect(engine.settings().cacheKib).toBe(LOW_MEMORY_SQLITE_CACHE_KIB);
    expect(LOW_MEMORY_SQLITE_CACHE_KIB).toBeLessThan(2048);
  });

  it('opening does not migrate; methods refuse until migrate() ran', async () => {
    const engine = await openEngine();
    const raw = new Database(dbPath, { readonly: true });
    const tables = raw.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all();
    raw.close();
    expect(tables).toEqual([]);
    await expect(engine.enqueue([job()])).rejects.toMatchObject({ code: 'store_unavailable' });
    const status = await engine.migrate();
    const latest = loadMigrations().length;
    expect(status).toEqual({ current: latest, latest, applied: Array.from({ length: latest }, (_, i) => i + 1) });
    expect((await engine.enqueue([job()]))[0]!.created).toBe(true);
  });

  it('keeps committed work across close and reopen', async () => {
    const first = await openEngine();
    await first.migrate();
    const stored = (await first.enqueue([job({ payload: { keep: true } })]))[0]!.job;
    await first.close();
    const second = await openEngine();
    expect(await second.getJob(stored.id)).toMatchObject({ payload: { keep: true }, state: 'queued' });
  });

  describe('pidfile lock', () => {
    it('refuses a second open while the first holds the store, and frees it on close', async () => {
      const first = await openEngine();
      expect(readFileSync(`${dbPath}.lock`, 'utf8').trim()).toBe(String(process.pid));
      const second = openSqliteEngine({ path: dbPath });
      await expect(second).rejects.toMatchObject({ code: 'store_unavailable' });
      await expect(second).rejects.toThrow(`in use by drover pid ${process.pid}`);

      // Tools such as backup open without the lock.
      const tool = await openEngine({ lock: false });
      await tool.close();
      expect(existsSync(`${dbPath}.lock`)).toBe(true);

      await first.close();
      expect(existsSync(`${dbPath}.lock`)).toBe(false);
      await openEngine();
    });

    it('takes over a lock left by a dead process', async () => {
      const engine = await openEngine();
      await engine.close();
      // A process that has exited: its pid is (for the next moments) nobody's.
      const dead = spawnSync(process.execPath, ['-e', '']).pid!;
      writeFileSync(`${dbPath}.lock`, `${dead}\n`);
      await openEngine();
      expect(readFileSync(`${dbPath}.lock`, 'utf8').trim()).toBe(String(process.pid));
    });
  });

  it('refuses a store whose schema is newer than this binary', async () => {
    const engine = await openEngine();
    await engine.migrate();
    await engine.close();
    const raw = new Database(dbPath);
    raw.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, ?, ?)').run('future', Date.now());
    raw.close();

    const reopened = await openEngine();
    const migrating = reopened.migrate();
    await expect(migrating).rejects.toBeInstanceOf(SchemaTooNewError);
    await expect(migrating).rejects.toMatchObject({ extensions: { found: 999, known: loadMigrations().length } });
  });

  it('group commit: 100 parallel enqueues share a few transactions', async () => {
    const engine = await openEngine();
    await engine.migrate();
    const before = engine.stats;
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => engine.enqueue([job({ payload: i })])));
    expect(results.every(([r]) => r!.created)).toBe(true);
    const after = engine.stats;
    expect(after.ops - before.ops).toBe(100);
    expect(after.batches - before.batches).toBeLessThanOrEqual(2);
    expect(after.lastBatchSize).toBeGreaterThanOrEqual(50);
  });

  it('loads queue depth counters from the file at open', async () => {
    const first = await openEngine();
    await first.migrate();
    await first.enqueue([job(), job({ runAt: Date.now() + 60_000 })]);
    await first.close();
    const second = await openEngine();
    const limits = { queueLimits: new Map([['default', { maxDepth: 2 }]]) };
    await expect(second.enqueue([job()], limits)).rejects.toBeInstanceOf(QueueFullError);
  });

  // The hot path builds enqueued and leased rows in JS instead of reading them back
  // (statements.ts): they must hold what SQLite stores, not what was bound.
  it('answers enqueue and lease with the stored values of strings and numbers SQLite changes', async () => {
    const engine = await openEngine();
    await engine.migrate();
    const lone = 'x\ud800y'; // a lone surrogate (valid in a JSON string), stored as U+FFFD
    const [first] = await engine.enqueue([
      job({
        handler: lone,
        queue: `q${lone}`,
        payload: { s: lone },
        priority: -0,
        idempotencyKey: lone,
        concurrencyKey: lone,
        concurrencyLimit: Number.NaN,
        eventId: lone,
        traceparent: lone,
        tenant: lone,
      }),
    ]);
    const enqueued = first!.job;
    const stored = await engine.getJob(enqueued.id);
    expect(enqueued).toStrictEqual(stored);
    expect(stored).toMatchObject({ priority: 0, concurrencyLimit: null });
    expect(stored!.handler).not.toBe(lone);
    expect(Object.is(stored!.priority, -0)).toBe(false);

    const [ingested] = await engine.ingest([{ event: { id: `e${lone}`, name: lone, data: { s: lone }, tenant: lone }, jobs: [] }]);
    expect(ingested!.event).toStrictEqual(await engine.getEvent(ingested!.event.id));
    expect(ingested!.event.name).not.toBe(lone);

    const [leased] = await engine.lease({ workerId: `w${lone}`, keyId: `k${lone}`, handlers: [{ name: stored!.handler, max: 1 }], limit: 1, leaseMs: 1000 });
    const { event: _event, ...fields } = leased!;
    expect(fields).toStrictEqual(await engine.getJob(enqueued.id));
    expect(fields.workerId).not.toBe(`w${lone}`);
  });

  it('close waits for queued writes and then refuses new ones', async () => {
    const engine = await openEngine();
    await engine.migrate();
    const pending = engine.enqueue([job()]);
    await engine.close();
    expect((await pending)[0]!.created).toBe(true);
    await expect(engine.enqueue([job()])).rejects.toMatchObject({ code: 'store_unavailable' });
    await expect(engine.getJob('1')).rejects.toMatchObject({ code: 'store_unavailable' });
  });
});

describe('group commit', () => {
  let db: Database.Database;
  let committed: number[][];
  let commit: GroupCommit<number[]>;

  beforeEach(() => {
    db = new Database(':memory:');
    db.exec('CREATE TABLE t (v INTEGER NOT NULL UNIQUE)');
    committed = [];
    commit = new GroupCommit<number[]>(db, {
      create: () => [],
      merge: (into, from) => void into.push(...from),
      committed: (effects) => void committed.push(effects),
    });
  });

  afterEach(async () => {
    await commit.close();
    db.close();
  });

  const insert = (v: number) =>
    commit.submit((own) => {
      db.prepare('INSERT INTO t (v) VALUES (?)').run(v);
      own.push(v);
      return v;
    });
  const values = () => db.prepare('SELECT v FROM t ORDER BY v').pluck().all();

  it('rolls back only the failing op and keeps only the others\' effects', async () => {
    const failing = commit.submit((own) => {
      db.prepare('INSERT INTO t (v) VALUES (?)').run(99); // undone by the op's savepoint
      own.push(99);
      throw new Error('refused');
    });
    const results = await Promise.allSettled([insert(1), failing, insert(2)]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(values()).toEqual([1, 2]);
    expect(committed).toEqual([[1, 2]]);
    expect(commit.stats).toMatchObject({ batches: 1, ops: 3, lastBatchSize: 3, failedCommits: 0 });
  });

  it('rejects every op of a batch whose transaction is lost', async () => {
    const results = await Promise.allSettled([
      insert(1),
      commit.submit(() => {
        db.exec('ROLLBACK'); // what SQLITE_FULL or SQLITE_IOERR can do behind our back
        throw new Error('disk full');
      }),
      insert(2),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(values()).toEqual([]);
    expect(committed).toEqual([]);
    expect(commit.stats.failedCommits).toBe(1);
    // The next batch works normally.
    expect(await insert(3)).toBe(3);
    expect(values()).toEqual([3]);
  });
});
