/**
 * A pg client's 'error' never reaches the process as an uncaught exception:
 * a connection killed while checked out of the pool (between the statements
 * of a transaction) or while idle in it is counted once, reported, and
 * discarded; the pool goes on with new connections. Against the real
 * PostgreSQL: the backends are ended with pg_terminate_backend.
 */
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { ConnectionErrors, type ConnectionErrorKind } from '../../src/store/postgres/connection-errors.js';
import { waitFor } from '../helpers/wait-for.js';

const PG_URL = process.env.DROVER_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const admin = new pg.Pool({ connectionString: PG_URL, max: 1 });
const pools: pg.Pool[] = [];

afterAll(async () => {
  await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
  await admin.end();
});

function watched(): { pool: pg.Pool; errors: ConnectionErrors; reports: Array<[ConnectionErrorKind, string]> } {
  const reports: Array<[ConnectionErrorKind, string]> = [];
  const errors = new ConnectionErrors((kind, error) => reports.push([kind, error.message]));
  const pool = new pg.Pool({ connectionString: PG_URL, max: 2, application_name: 'drover-conn-errors-test' });
  pools.push(pool);
  errors.watch(pool);
  return { pool, errors, reports };
}

const terminate = async (pid: number) => (await admin.query('SELECT pg_terminate_backend($1) AS ok', [pid])).rows[0].ok as boolean;

describe('pg client errors', () => {
  it('a connection killed while checked out is counted as active, reported once, and discarded', async () => {
    const { pool, errors, reports } = watched();
    const client = await pool.connect();
    await client.query('BEGIN');
    const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    expect(await terminate(pid)).toBe(true);
    // Without a listener of its own, this 'error' was an uncaught exception that ended the process.
    await waitFor(() => errors.counts.active === 1, { timeoutMs: 5_000, message: 'the checked-out connection error was counted' });
    await expect(client.query('COMMIT')).rejects.toThrow();
    client.release(new Error('broken'));
    expect(reports.filter(([kind]) => kind === 'active')).toHaveLength(1);
    expect((await pool.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one).toBe(1);
  });

  it('a connection killed while idle in the pool is counted as idle and the pool replaces it', async () => {
    const { pool, errors } = watched();
    const client = await pool.connect();
    const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    client.release();
    expect(await terminate(pid)).toBe(true);
    await waitFor(() => errors.counts.idle === 1, { timeoutMs: 5_000, message: 'the idle connection error was counted' });
    expect(errors.counts.active).toBe(0);
    expect((await pool.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one).toBe(1);
  });
});
