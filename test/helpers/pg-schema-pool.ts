/**
 * Migrated PostgreSQL schemas handed from one test of a file to the next.
 * Migrating a fresh schema (ten DDL transactions, each a WAL flush) and
 * dropping it after is most of a small store test on PostgreSQL (~130 ms, more
 * under load); emptying a migrated one costs ~30 ms. A schema comes back only
 * as it was right after its migrations: `release` (after the test closed its
 * engines) compares its catalog with the one recorded then (relations with
 * their columns, functions, triggers, types, the applied versions) and drops
 * it on any difference, so a test that adds, drops or alters anything (a
 * payload index, say) leaves no trace for the next. What stays is emptied
 * with DELETE (TRUNCATE's new relation files cost 200-300 ms here) and its
 * sequences restarted, so ids start at 1 again as in a new schema.
 *
 * Use it where the tests reach the store through engines they open on the
 * schema given, not where a test needs the migrations to run (those take a
 * fresh schema of their own).
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { openPostgresEngine, type PostgresEngine } from '../../src/store/postgres/postgres-engine.js';

const CATALOG_SQL = `
  SELECT
    (SELECT string_agg(c.relname || '/' || c.relkind::text || '/' || coalesce(cols.list, ''), ',' ORDER BY c.relname)
       FROM pg_class c
       LEFT JOIN LATERAL (SELECT string_agg(a.attname || ':' || format_type(a.atttypid, a.atttypmod) || ':' || a.attnotnull, ';' ORDER BY a.attnum) AS list
                            FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) cols ON true
      WHERE c.relnamespace = $1::regnamespace) AS relations,
    (SELECT string_agg(p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', ',' ORDER BY 1)
       FROM pg_proc p WHERE p.pronamespace = $1::regnamespace) AS functions,
    (SELECT string_agg(t.tgname, ',' ORDER BY 1)
       FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = $1::regnamespace) AS triggers,
    (SELECT string_agg(t.typname, ',' ORDER BY 1) FROM pg_type t WHERE t.typnamespace = $1::regnamespace) AS types`;

interface Recorded {
  catalog: string;
  tables: string[];
  sequences: string[];
}

export interface PgSchemaPool {
  /** A migrated, empty schema: one left by an earlier test, or a fresh one that `migrate` brings up. */
  take(migrate: (schema: string) => Promise<void>): Promise<string>;
  /** Call once the schema's engines are closed: emptied and kept for the next test, or dropped. */
  release(schema: string): Promise<void>;
  /** Drop every schema still kept (afterAll). */
  drain(): Promise<void>;
}

export function pgSchemaPool(admin: pg.Pool, prefix = 'drover_t_'): PgSchemaPool {
  const recorded = new Map<string, Recorded>();
  const idle: string[] = [];
  let reusable = true;

  const catalogOf = async (schema: string): Promise<string> => {
    const { rows } = await admin.query(CATALOG_SQL, [schema]);
    const versions = await admin.query(`SELECT string_agg(version::text, ',' ORDER BY version) AS v FROM ${schema}.schema_migrations`);
    return JSON.stringify({ ...rows[0], versions: versions.rows[0]?.v ?? null });
  };

  const record = async (schema: string): Promise<void> => {
    const { rows } = await admin.query<{ relname: string; relkind: string }>(
      "SELECT relname, relkind::text FROM pg_class WHERE relnamespace = $1::regnamespace AND relkind IN ('r', 'p', 'S')",
      [schema],
    );
    const tables = rows.filter((r) => r.relkind !== 'S' && r.relname !== 'schema_migrations').map((r) => r.relname);
    // A migration that seeds rows would need them put back after the DELETEs in `release`: such a schema is never reused.
    for (const table of tables) {
      if ((await admin.query(`SELECT 1 FROM ${schema}.${table} LIMIT 1`)).rows.length > 0) reusable = false;
    }
    recorded.set(schema, { catalog: await catalogOf(schema), tables, sequences: rows.filter((r) => r.relkind === 'S').map((r) => r.relname) });
  };

  const drop = async (schema: string): Promise<void> => {
    recorded.delete(schema);
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  };

  return {
    async take(migrate) {
      const kept = idle.pop();
      if (kept) return kept;
      const schema = `${prefix}${randomUUID().replace(/-/g, '').slice(0, 16)}`;
      try {
        await migrate(schema);
        await record(schema);
      } catch (error) {
        await drop(schema);
        throw error;
      }
      return schema;
    },

    async release(schema) {
      const before = recorded.get(schema);
      if (!before || !reusable || (await catalogOf(schema).catch(() => null)) !== before.catalog) return drop(schema);
      const empty = [
        ...before.tables.map((t) => `DELETE FROM ${schema}.${t};`),
        ...before.sequences.map((q) => `ALTER SEQUENCE ${schema}.${q} RESTART;`),
      ];
      try {
        await admin.query(empty.join(' ')); // one query string: one implicit transaction, rolled back whole on an error
      } catch {
        return drop(schema); // e.g. a foreign key a later migration adds: a fresh schema instead
      }
      idle.push(schema);
    },

    async drain() {
      idle.length = 0;
      for (const schema of [...recorded.keys()]) await drop(schema);
    },
  };
}

/**
 * The store factory of a conformance suite (test/store/conformance.ts) on pooled schemas: each test's engine
 * on a schema `pool` hands out, released after the engine closed. A fresh schema is migrated by an engine of
 * its own first, so the test's engine finds it as a reused one would be.
 */
export function pooledEngineFactory(pool: PgSchemaPool, url: string): (clock: () => number) => Promise<{ engine: PostgresEngine; cleanup(): Promise<void> }> {
  return async (clock) => {
    const schema = await pool.take(async (fresh) => {
      const migrator = openPostgresEngine({ url, schema: fresh, poolMax: 1 });
      try {
        await migrator.migrate();
      } finally {
        await migrator.close();
      }
    });
    const engine = openPostgresEngine({ url, schema, clock, poolMax: 5, nodeLockWaitMs: 300 });
    return {
      engine,
      cleanup: async () => {
        await engine.close();
        await pool.release(schema);
      },
    };
  };
}
