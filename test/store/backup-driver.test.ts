/**
 * The per-engine backup drivers behind the seam: chosen by URL or engine,
 * they open a copy read-only and report their own checks (a bad copy is a
 * failed check, never a throw), and put a copy where a store lives, refusing
 * while a node holds the target. `ops/backup/*` builds verify and restore on
 * them (test/ops/backup.test.ts, test/ops/postgres-backup.test.ts).
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { DroverError } from '../../src/core/errors.js';
import { backupDriver, backupDriverFor, type BackupContents } from '../../src/store/backup-driver.js';
import { openStore } from '../../src/store/open.js';

const PG_URL = process.env.DROVER_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'drover-driver-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

type Check = { name: string; ok: boolean; detail: string };
async function inspect(engine: 'sqlite' | 'postgres', file: string, options: { schema?: string; databaseUrl?: string } = {}) {
  const checks: Check[] = [];
  let contents: BackupContents | null = null;
  let records = -1;
  await backupDriver(engine).inspect(file, options, (name, ok, detail) => checks.push({ name, ok, detail }), async (c) => {
    contents = c;
    records = (await c.audit.readAudit({ limit: 100 })).length;
  });
  return { checks, contents: contents as BackupContents | null, records };
}

const job = (i: number) => ({ handler: 'h', queue: 'default', payload: { i }, priority: 0, runAt: Date.now() + 3_600_000, maxAttempts: 3 });

describe('choosing a driver', () => {
  it('by URL and by engine, each knowing its engine\'s latest schema', async () => {
    expect(backupDriverFor('data/drover.db').engine).toBe('sqlite');
    expect(backupDriverFor('sqlite:data/drover.db').engine).toBe('sqlite');
    expect(backupDriverFor('postgres://db/app').engine).toBe('postgres');
    const store = await openStore(join(tempDir(), 'drover.db'));
    try {
      expect(backupDriver('sqlite').latestSchemaVersion()).toBe((await store.migrate()).latest);
    } finally {
      await store.close();
    }
  });
});

describe('sqlite backup driver', () => {
  it('inspects a good copy: integrity passes and the contents are the copy\'s', async () => {
    const dir = tempDir();
    const store = await openStore(join(dir, 'drover.db'));
    await store.migrate();
    await store.enqueue([job(1), job(2), job(3)]);
    const snapshot = await store.backupTo(join(dir, 'copy.db'));
    await store.close();

    const { checks, contents, records } = await inspect('sqlite', join(dir, 'copy.db'));
    expect(checks).toEqual([{ name: 'integrity', ok: true, detail: expect.stringContaining('ok') }]);
    expect(contents).toMatchObject({ schemaVersion: snapshot.schemaVersion, counts: snapshot.counts, label: 'copy.db' });
    expect(contents!.counts.jobs).toBe(3);
    expect(records).toBe(0);
  });

  it('reports a file that is no database as a failed integrity check, and never opens its contents', async () => {
    const file = join(tempDir(), 'drover.db');
    writeFileSync(file, 'not a database at all, just text '.repeat(200));
    const { checks, contents } = await inspect('sqlite', file);
    expect(checks).toHaveLength(1);
    expect(checks[0]).toMatchObject({ name: 'integrity', ok: false });
    expect(contents).toBeNull();
  });

  it('places a copy: refuses while a node holds the store, then keeps the old file aside and opens the copy', async () => {
    const dir = tempDir();
    const target = join(dir, 'drover.db');
    const source = await openStore(join(dir, 'source.db'));
    await source.migrate();
    await source.enqueue([job(1), job(2)]);
    await source.backupTo(join(dir, 'copy.db'));
    await source.close();

    const live = await openStore(target); // takes the single-owner lock, like a running node
    await live.migrate();
    const place = () => backupDriverFor(target).place({ file: join(dir, 'copy.db'), databaseUrl: target, stamp: 'T1', checkCopy: async () => undefined });
    const refused = await place().catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(DroverError);
    expect((refused as DroverError).code).toBe('store_unavailable');
    expect((refused as DroverError).message).toContain(`in use by drover pid ${process.pid}`);
    await live.close();

    const placed = await place();
    try {
      expect(placed.target).toBe(target);
      expect(placed.aside).toContain(`${target}.before-restore-T1`);
      expect(existsSync(`${target}.before-restore-T1`)).toBe(true);
      const restored = await placed.open({ clock: Date.now });
      try {
        expect((await restored.listJobs({ limit: 10 })).map((j) => j.payload)).toEqual(expect.arrayContaining([{ i: 1 }, { i: 2 }]));
      } finally {
        await restored.close();
      }
    } finally {
      placed.release();
    }
  });
});

describe('postgres backup driver', () => {
  const admin = new pg.Pool({ connectionString: PG_URL, max: 1 });
  admin.on('error', () => undefined);
  const schema = `drover_t_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
  afterAll(async () => {
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
  });

  it('inspects an archive in a scratch database, and says what it cannot check without a server', async () => {
    const dir = tempDir();
    const store = await openStore(PG_URL, { postgres: { schema, poolMax: 2 } });
    let snapshot;
    try {
      await store.migrate();
      await store.enqueue([job(1), job(2)]);
      snapshot = await store.backupTo(join(dir, 'drover.pgdump'));
    } finally {
      await store.close();
    }
    expect(snapshot.schema).toBe(schema);

    const offline = await inspect('postgres', join(dir, 'drover.pgdump'), { schema, databaseUrl: join(dir, 'drover.db') });
    expect(offline.checks.map((c) => [c.name, c.ok])).toEqual([['archive', true], ['integrity', false]]);
    expect(offline.checks[1]!.detail).toContain('needs a PostgreSQL server');
    expect(offline.contents).toBeNull();

    const online = await inspect('postgres', join(dir, 'drover.pgdump'), { schema, databaseUrl: PG_URL });
    expect(online.checks.map((c) => [c.name, c.ok])).toEqual([['archive', true], ['integrity', true]]);
    expect(online.contents).toMatchObject({ schemaVersion: snapshot.schemaVersion, counts: snapshot.counts, label: 'archive' });
    expect(online.records).toBe(0);

    const wrong = await inspect('postgres', join(dir, 'drover.pgdump'), { schema: 'drover_other' });
    expect(wrong.checks[0]).toEqual({ name: 'archive', ok: false, detail: expect.stringContaining(`holds schema(s) ${schema}`) });
  }, 30_000);

  it('refuses to place an archive of another schema (pg_restore cannot rename one)', async () => {
    const refused = await backupDriverFor(PG_URL)
      .place({ file: '/nonexistent', databaseUrl: PG_URL, stamp: 'T1', schema, archivedSchema: 'drover_elsewhere', checkCopy: async () => undefined })
      .catch((error: unknown) => error);
    expect((refused as DroverError).code).toBe('validation');
    expect((refused as DroverError).message).toContain(`set DROVER_PG_SCHEMA=drover_elsewhere`);
  });
});
