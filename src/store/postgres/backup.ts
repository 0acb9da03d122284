/**
 * PostgreSQL backups: a `pg_dump` custom-format archive of the engine's
 * schema, taken while nodes keep running.
 *
 * The counts reported with the archive must describe exactly what is in it.
 * So a REPEATABLE READ transaction exports its snapshot, pg_dump reads that
 * same snapshot (`--snapshot`), and the counts are taken in the transaction
 * while pg_dump runs: both see one instant of the database.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import pg from 'pg';
import { DroverError, toError } from '../../core/errors.js';
import type { BackupSnapshot } from '../engine.js';
import { longQuery } from './connection.js';

function runPgDump(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('pg_dump', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const stderr: string[] = [];
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
    child.on('error', (error) => reject(new Error(`cannot run pg_dump (is the PostgreSQL client installed?): ${error.message}`)));
    child.on('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`pg_dump exited with ${code ?? signal}: ${stderr.join('').trim()}`));
    });
  });
}

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Dump `schema` to `file` (which must not exist), via `file.partial` renamed
 * into place once complete and on disk.
 *
 * @example
 * const snapshot = await dumpPostgres(pool, url, 'drover', '/backups/drover.pgdump');
 * snapshot.counts.jobs; // rows in the archive
 */
export async function dumpPostgres(pool: pg.Pool, url: string, schema: string, file: string): Promise<BackupSnapshot> {
  if (existsSync(file)) throw new DroverError('validation', `backup target ${file} already exists`);
  const partial = `${file}.partial`;
  rmSync(partial, { force: true });
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    // pg_dump can take a while; the transaction only has to outlive it. Counting a large table may
    // take longer than a store call's deadline (postgres.statementTimeoutMs), so it has none here.
    await client.query('SET LOCAL idle_in_transaction_session_timeout = 0');
    await client.query('SET LOCAL statement_timeout = 0');
    const snapshotId = (await client.query<{ id: string }>('SELECT pg_export_snapshot() AS id')).rows[0]!.id;
    const dump = runPgDump(['--format=custom', `--snapshot=${snapshotId}`, `--schema=${schema}`, `--file=${partial}`, `--dbname=${url}`]);
    dump.catch(() => undefined); // awaited below; a failure before then must not count as unhandled
    const counts: Record<string, number> = {};
    const { rows: tables } = await client.query<{ name: string }>('SELECT tablename AS name FROM pg_tables WHERE schemaname = $1 ORDER BY 1', [
      schema,
    ]);
    for (const { name } of tables) {
      // Table names come from the catalog, quoted as identifiers.
      const { rows } = await client.query<{ n: number }>(longQuery(`SELECT count(*) AS n FROM ${pg.escapeIdentifier(name)}`));
      counts[name] = rows[0]?.n ?? 0;
    }
    const version = (await client.query<{ v: number | null }>('SELECT max(version)::int AS v FROM schema_migrations')).rows[0]?.v ?? 0;
    await dump;
    await client.query('COMMIT');
    fsyncPath(partial);
    renameSync(partial, file);
    fsyncPath(dirname(file));
    return { schemaVersion: version, counts, schema };
  } catch (error) {
    await client.query('ROLLBACK').catch((rollbackError: unknown) => {
      broken = toError(rollbackError);
    });
    rmSync(partial, { force: true });
    if (error instanceof DroverError) throw error;
    throw new DroverError('store_unavailable', `backup to ${file} failed: ${toError(error).message}`, { cause: error });
  } finally {
    client.release(broken);
  }
}
