/**
 * The PostgreSQL side of verifying and restoring a `pg_dump` archive (taking
 * one is `backup.ts`). Verification restores the archive into a scratch
 * database (the archive names its schema, and pg_restore cannot rename one,
 * so a scratch *schema* in the live database would collide with the live
 * one) and reads it there; restore renames the live schema aside and
 * restores the archive in its place.
 *
 * Requires the PostgreSQL client tools (`pg_restore`) on the PATH.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { DroverError, toError } from '../../core/errors.js';
import { assertSchemaName } from './connection.js';

const TOOLS_HINT = 'install the PostgreSQL client tools of the server\'s major version or newer (Debian/Ubuntu: apt-get install postgresql-client)';

function run(tool: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(tool, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: string[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk.toString()));
    child.on('error', (error) => reject(new DroverError('config_invalid', `cannot run ${tool} (${error.message}); ${TOOLS_HINT}`)));
    child.on('exit', (code, signal) => {
      if (code === 0) resolve(Buffer.concat(out).toString());
      else reject(new Error(`${tool} exited with ${code ?? signal}: ${err.join('').trim().split('\n').slice(0, 5).join('; ')}`));
    });
  });
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: 'drover-restore', connectionTimeoutMillis: 5_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The schemas an archive creates (`pg_restore --list`); throws when the archive is unreadable. */
export async function archiveSchemas(file: string): Promise<string[]> {
  const list = await run('pg_restore', ['--list', file]);
  const schemas = new Set<string>();
  for (const line of list.split('\n')) {
    const m = /^\d+;\s+\d+\s+\d+\s+SCHEMA\s+-\s+(\S+)\s/.exec(line);
    if (m?.[1]) schemas.add(m[1]);
  }
  return [...schemas];
}

/** Connections from Drover processes (nodes, commands) using `schema` in the database of `url`. */
export async function droverConnections(url: string, schema: string): Promise<Array<{ pid: number; since: string; client: string | null }>> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ pid: number; since: Date; client: string | null }>(
      `SELECT pid, backend_start AS since, client_addr::text AS client FROM pg_stat_activity
       WHERE datname = current_database() AND application_name = $1 AND pid <> pg_backend_pid()`,
      [`drover/${schema}`],
    );
    return rows.map((r) => ({ pid: r.pid, since: new Date(r.since).toISOString(), client: r.client }));
  });
}

/**
 * Restore `file` into a new scratch database on the server of `url`, run
 * `fn` with that database's URL, and drop it whatever happens.
 */
export async function inScratchDatabase<T>(url: string, file: string, fn: (scratchUrl: string) => Promise<T>): Promise<T> {
  const name = `drover_verify_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  try {
    await withClient(url, (client) => client.query(`CREATE DATABASE ${name}`));
  } catch (error) {
    throw new DroverError('store_unavailable', `cannot create a scratch database to verify the backup in (${toError(error).message}); the user in DROVER_DATABASE_URL needs CREATEDB`, { cause: error });
  }
  const target = new URL(url);
  target.pathname = `/${name}`;
  const scratchUrl = target.toString();
  try {
    await restoreArchive(file, scratchUrl);
    return await fn(scratchUrl);
  } finally {
    await withClient(url, (client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).catch(() => undefined);
  }
}

/** `pg_restore` the archive into the database of `url`; stops at the first error. */
export async function restoreArchive(file: string, url: string): Promise<void> {
  await run('pg_restore', ['--no-owner', '--exit-on-error', '--single-transaction', `--dbname=${url}`, file]);
}

export interface SchemaContents {
  schemaVersion: number;
  counts: Record<string, number>;
}

/** Rows per table and the schema version of `schema` in the database of `url`. */
export async function schemaContents(url: string, schema: string): Promise<SchemaContents> {
  assertSchemaName(schema);
  return withClient(url, async (client) => {
    const { rows: tables } = await client.query<{ name: string }>('SELECT tablename AS name FROM pg_tables WHERE schemaname = $1 ORDER BY 1', [schema]);
    const counts: Record<string, number> = {};
    for (const { name } of tables) {
      const { rows } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${schema}.${pg.escapeIdentifier(name)}`);
      counts[name] = Number(rows[0]?.n ?? 0);
    }
    const version = tables.some((t) => t.name === 'schema_migrations')
      ? ((await client.query<{ v: number | null }>(`SELECT max(version)::int AS v FROM ${schema}.schema_migrations`)).rows[0]?.v ?? 0)
      : 0;
    return { schemaVersion: version, counts };
  });
}

/**
 * Rename `schema` to `aside` (the previous data stays in the database); false
 * when there was no such schema.
 */
export async function moveSchemaAside(url: string, schema: string, aside: string): Promise<boolean> {
  assertSchemaName(schema);
  assertSchemaName(aside);
  return withClient(url, async (client) => {
    const { rowCount } = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
    if (!rowCount) return false;
    await client.query(`ALTER SCHEMA ${schema} RENAME TO ${aside}`);
    return true;
  });
}

/** Undo `moveSchemaAside` after a failed restore: drop what was half restored, rename the old schema back. */
export async function moveSchemaBack(url: string, aside: string, schema: string): Promise<void> {
  await withClient(url, async (client) => {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.query(`ALTER SCHEMA ${aside} RENAME TO ${schema}`);
  });
}
