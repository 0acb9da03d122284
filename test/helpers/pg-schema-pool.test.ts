/**
 * The schema pool itself: a schema comes back empty with its ids starting
 * over, exactly as migrated; one whose catalog a test changed is dropped and
 * the next test gets a fresh one.
 */
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { openPostgresEngine } from '../../src/store/postgres/postgres-engine.js';
import { PG_URL } from './node.js';
import { pgSchemaPool } from './pg-schema-pool.js';

const admin = new pg.Pool({ connectionString: PG_URL, max: 1 });
admin.on('error', () => undefined);
const pool = pgSchemaPool(admin, 'drover_tp_');
afterAll(async () => {
  await pool.drain();
  await admin.end();
});

const migrate = async (schema: string) => {
  const engine = openPostgresEngine({ url: PG_URL, schema, poolMax: 1 });
  try {
    await engine.migrate();
  } finally {
    await engine.close();
  }
};
const exists = async (schema: string) => (await admin.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])).rows.length > 0;
const enqueue = async (schema: string) => {
  const engine = openPostgresEngine({ url: PG_URL, schema, poolMax: 1 });
  try {
    const [result] = await engine.enqueue([{ handler: 'h', queue: 'default', payload: null, priority: 0, runAt: Date.now(), maxAttempts: 3 }]);
    return result!.job.id;
  } finally {
    await engine.close();
  }
};

describe('the PostgreSQL schema pool', () => {
  it('hands a released schema out again empty, its ids starting over', async () => {
    const schema = await pool.take(migrate);
    expect(await enqueue(schema)).toBe('1');
    await pool.release(schema);
    expect(await pool.take(migrate)).toBe(schema);
    expect((await admin.query(`SELECT count(*)::int AS n FROM ${schema}.jobs`)).rows[0].n).toBe(0);
    expect(await enqueue(schema)).toBe('1');
    await pool.release(schema);
  });

  it('drops a schema whose catalog changed (an index added) and hands out a fresh one', async () => {
    const schema = await pool.take(migrate);
    await admin.query(`CREATE INDEX extra_idx ON ${schema}.jobs (queue)`);
    await pool.release(schema);
    expect(await exists(schema)).toBe(false);
    const next = await pool.take(migrate);
    expect(next).not.toBe(schema);
    expect((await admin.query("SELECT count(*)::int AS n FROM pg_indexes WHERE schemaname = $1 AND indexname = 'extra_idx'", [next])).rows[0].n).toBe(0);
    await pool.release(next);
  });

  it('drops a schema whose applied migrations changed', async () => {
    const schema = await pool.take(migrate);
    await admin.query(`INSERT INTO ${schema}.schema_migrations (version, name, applied_at) VALUES (999, 'from the future', 0)`);
    await pool.release(schema);
    expect(await exists(schema)).toBe(false);
  });
});
