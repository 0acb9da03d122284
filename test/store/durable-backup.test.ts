/**
 * Backups carry durable execution's rows: a store restored from a backup
 * (the engines' own backupTo, then the backup driver's place) still has the
 * suspended job's steps and its pending wait, and the wait still listens for
 * its event (its wait_events rows came along). Both engines.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { DURABLE_DEFAULTS } from '../../src/core/durable.js';
import { backupDriverFor } from '../../src/store/backup-driver.js';
import type { StorageEngine } from '../../src/store/engine.js';
import { openStore } from '../../src/store/open.js';

const PG_URL = process.env.DROVER_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const admin = new pg.Pool({ connectionString: PG_URL, max: 2 });
admin.on('error', () => undefined);
const dropSchemas: string[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  for (const schema of dropSchemas.splice(0)) await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
});
afterAll(() => admin.end());

/** A job with one finished step, suspended on an event wait. */
async function suspendedJob(store: StorageEngine): Promise<{ jobId: string; waitId: string }> {
  await store.enqueue([{ handler: 'h', queue: 'default', payload: null, priority: 0, runAt: 0, maxAttempts: 3 }]);
  const [job] = await store.lease({ workerId: 'w', handlers: [{ name: 'h', max: 1 }], limit: 1, leaseMs: 60_000 });
  const step = { name: 'load', seq: 0, kind: 'run' as const, startedAt: Date.now(), result: { order: 'o-1' }, limits: DURABLE_DEFAULTS };
  expect((await store.recordStep(job!.id, job!.leaseToken, step)).ok).toBe(true);
  const suspended = await store.suspend(job!.id, job!.leaseToken, {
    step: 'paid',
    seq: 1,
    kind: 'event',
    startedAt: Date.now(),
    wakeAt: null,
    events: ['payment.settled'],
    match: { 'data.order': 'o-1' },
  });
  if (!suspended.ok || !suspended.suspended) throw new Error('expected a suspension');
  return { jobId: job!.id, waitId: suspended.wait.id };
}

async function expectRestored(store: StorageEngine, jobId: string, waitId: string): Promise<void> {
  expect((await store.getSteps(jobId)).map((s) => s.name)).toEqual(['load']);
  expect(await store.pendingWait(jobId)).toMatchObject({ id: waitId, state: 'pending' });
  const [hit] = await store.ingest([{ event: { id: 'after-restore', name: 'payment.settled', data: { order: 'o-1' } }, jobs: [] }]);
  expect(hit!.resolvedWaits?.map((r) => r.wait.id)).toEqual([waitId]);
}

describe('durable rows survive backup and restore', () => {
  it('sqlite', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-durable-backup-'));
    dirs.push(dir);
    const target = join(dir, 'drover.db');
    const store = await openStore(target);
    await store.migrate();
    const { jobId, waitId } = await suspendedJob(store);
    const snapshot = await store.backupTo(join(dir, 'copy.db'));
    expect(snapshot.counts).toMatchObject({ steps: 1, waits: 1, wait_events: 1 });
    await store.close();

    const placed = await backupDriverFor(target).place({ file: join(dir, 'copy.db'), databaseUrl: target, stamp: 'T1', checkCopy: async () => undefined });
    try {
      const restored = await placed.open({ clock: Date.now });
      try {
        await expectRestored(restored, jobId, waitId);
      } finally {
        await restored.close();
      }
    } finally {
      placed.release();
    }
  });

  it('postgres', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-durable-backup-'));
    dirs.push(dir);
    const schema = `drover_db_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
    dropSchemas.push(schema);
    const store = await openStore(PG_URL, { postgres: { schema, poolMax: 2 } });
    let ids: { jobId: string; waitId: string };
    try {
      await store.migrate();
      ids = await suspendedJob(store);
      const snapshot = await store.backupTo(join(dir, 'archive.pgdump'));
      expect(snapshot.counts).toMatchObject({ steps: 1, waits: 1, wait_events: 1 });
    } finally {
      await store.close();
    }

    const placed = await backupDriverFor(PG_URL).place({
      file: join(dir, 'archive.pgdump'),
      databaseUrl: PG_URL,
      stamp: `t${Date.now()}`,
      schema,
      archivedSchema: schema,
      checkCopy: async () => undefined,
    });
    dropSchemas.push(...placed.aside.map((aside) => aside.replace(/^schema /, '')));
    try {
      const restored = await placed.open({ clock: Date.now });
      try {
        await expectRestored(restored, ids.jobId, ids.waitId);
      } finally {
        await restored.close();
      }
    } finally {
      placed.release();
    }
  });
});
