/**
 * The SQLite engine's memo of its own leases (src/store/sqlite/lease-memo.ts):
 * a lease-marked job's `start` answers without a write, a settle takes the
 * job's queue, lease number, worker and lease time from the memo, and an entry never outlives
 * its lease (that a cancelled or reclaimed lease-marked job is refused its
 * start, both engines hold: test/store/conformance.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { NewJob } from '../../src/core/types.js';
import type { LeaseRequest } from '../../src/store/engine.js';
import { openSqliteEngine, type SqliteEngine } from '../../src/store/sqlite/sqlite-engine.js';

const job = (over: Partial<NewJob> = {}): NewJob => ({ handler: 'h', queue: 'default', payload: {}, priority: 0, runAt: Date.now(), maxAttempts: 3, ...over });

describe('sqlite: the lease memo', () => {
  let dir: string;
  let engine: SqliteEngine;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'drover-memo-'));
    engine = await openSqliteEngine({ path: join(dir, 'drover.db') });
    await engine.migrate();
  });

  afterEach(async () => {
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const lease = (over: Partial<LeaseRequest> = {}) =>
    engine.lease({ workerId: 'w', handlers: [{ name: 'h', max: 10, start: 10 }], limit: 10, leaseMs: 30_000, ...over });

  it("answers a lease-marked job's start without a write, and a plain one's with one", async () => {
    await engine.enqueue([job(), job(), job()]);
    const [a, b, c] = await lease({ handlers: [{ name: 'h', max: 3, start: 2 }], limit: 3 });
    // Another connection's data_version changes with every commit of this one.
    const watcher = new Database(join(dir, 'drover.db'), { readonly: true });
    const version = () => watcher.pragma('data_version', { simple: true });
    try {
      const before = version();
      expect(await Promise.all([engine.start(a!.id, a!.leaseToken), engine.start(b!.id, b!.leaseToken)])).toEqual([{ ok: true }, { ok: true }]);
      expect(version()).toBe(before);
      expect(await engine.start(c!.id, c!.leaseToken)).toEqual({ ok: true });
      expect(version()).not.toBe(before);
    } finally {
      watcher.close();
    }
    const reclaimed = await engine.reclaimWorker('w', { poisonAfter: 5 });
    expect(reclaimed.every((r) => r.started)).toBe(true);
  });

  it("ends the right attempt row when a stale holder's settle arrives after the job was leased again", async () => {
    await engine.enqueue([job()]);
    const [first] = await lease();
    await engine.reclaimWorker('w', { poisonAfter: 5 });
    const [second] = await lease({ workerId: 'w2' });
    expect((await engine.complete(first!.id, first!.leaseToken, 'stale')).ok).toBe(false);
    expect((await engine.complete(second!.id, second!.leaseToken, 'fresh', { row: false })).ok).toBe(true);
    expect((await engine.getAttempts(second!.id)).map((a) => [a.attempt, a.outcome, a.workerId])).toEqual([
      [1, 'crashed', 'w'],
      [2, 'succeeded', 'w2'],
    ]);
    expect(await engine.getJob(second!.id)).toMatchObject({ state: 'succeeded', result: 'fresh', attempts: 2, crashes: 1 });
  });

  it('reads what the memo does not have (a lease from before a restart) from the row', async () => {
    const path = join(dir, 'drover.db');
    await engine.enqueue([job({ queue: 'q' })]);
    const [leased] = await lease();
    await engine.close();
    engine = await openSqliteEngine({ path });
    expect(await engine.queueStats()).toMatchObject([{ queue: 'q' }]);
    expect((await engine.complete(leased!.id, leased!.leaseToken, null)).ok).toBe(true);
    // Its attempt row too: worker and start from the job row (migration 0009's leased_at).
    expect((await engine.getAttempts(leased!.id)).map((a) => [a.attempt, a.outcome, a.workerId, a.startedAt])).toEqual([[1, 'succeeded', 'w', leased!.updatedAt]]);
    // The depth fell by the one job of its queue (read back from the row, not remembered).
    expect(await engine.enqueue([job({ queue: 'q' })], { queueLimits: new Map([['q', { maxDepth: 1 }]]) })).toHaveLength(1);
  });
});
