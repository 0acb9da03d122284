/**
 * Migrated PostgreSQL engines on the test server, each in a throwaway schema:
 * closed and dropped after each test of the file that calls `pgEnginesPerTest`.
 * `admin` is a one-connection pool for the test's own SQL, ended after the file.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach } from 'vitest';
import { openPostgresEngine, type PostgresEngine } from '../../src/store/postgres/postgres-engine.js';
import { PG_URL } from './node.js';

export interface PgEngines {
  admin: pg.Pool;
  migrated(): Promise<{ engine: PostgresEngine; schema: string }>;
}

export function pgEnginesPerTest(poolMax = 3): PgEngines {
  const admin = new pg.Pool({ connectionString: PG_URL, max: 1 });
  admin.on('error', () => undefined);
  const open: Array<{ engine: PostgresEngine; schema: string }> = [];
  afterEach(async () => {
    for (const { engine, schema } of open.splice(0)) {
      await engine.close();
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    }
  });
  afterAll(async () => {
    await admin.end();
  });
  return {
    admin,
    async migrated() {
      const schema = `drover_t_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
      const engine = openPostgresEngine({ url: PG_URL, schema, poolMax });
      open.push({ engine, schema });
      await engine.migrate();
      return { engine, schema };
    },
  };
}
