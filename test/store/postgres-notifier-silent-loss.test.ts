/**
 * The LISTEN session (which also holds the node-id lock) on a path that goes
 * silent: the notifier notices within its check interval plus the query
 * deadline, reconnects once the path heals, and takes its node lock back
 * even though the server still holds the lost session (it never heard it
 * close), by ending that session, which is its own. Real PostgreSQL behind
 * the test's FaultProxy.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { clientConfig } from '../../src/store/postgres/connection.js';
import { Notifier } from '../../src/store/postgres/notifier.js';
import { FaultProxy } from '../faults/fault-proxy.js';
import { waitFor } from '../helpers/wait-for.js';

const PG_URL = process.env.DROVER_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const admin = new pg.Pool({ connectionString: PG_URL, max: 1 });
const target = new URL(PG_URL);
const proxy = new FaultProxy({ host: target.hostname, port: Number(target.port || 5432) });
const app = `drover-notifier-test-${randomUUID().slice(0, 8)}`;
let notifier: Notifier | null = null;

afterAll(async () => {
  await notifier?.close();
  await proxy.close();
  await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [app]);
  await admin.end();
});

const holders = async (key: string) =>
  (
    await admin.query<{ pid: number }>(
      `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND ((classid::bigint << 32) | objid::bigint) = hashtextextended($1, 0)`,
      [key],
    )
  ).rows.map((r) => r.pid);

describe('notifier on a silent path', () => {
  it('detects the lost session, reconnects after healing and takes its node lock back from the session the server kept', { timeout: 30_000 }, async () => {
    const via = new URL(PG_URL);
    via.port = String(await proxy.listen());
    const lost: Error[] = [];
    notifier = new Notifier({
      config: clientConfig({ url: via.toString(), schema: 'public', applicationName: app, timeouts: { queryMs: 500, connectMs: 500, keepAliveIdleMs: 1_000 } }),
      channel: `drover_test_${randomUUID().slice(0, 8)}`,
      instanceId: randomUUID(),
      onWork: () => undefined,
      onLost: (error) => lost.push(error),
      checkEveryMs: 200,
    });
    const key = `drover:node:test:${randomUUID()}`;
    expect(await notifier.tryLock(key)).toBe(true);
    const [first] = await holders(key);
    expect(first).toBeDefined();

    proxy.blackhole();
    await waitFor(() => lost.length > 0, { timeoutMs: 5_000, message: 'the silent session was noticed' });
    expect(lost[0]!.message).toMatch(/Query read timeout/);
    // The server never heard the session close: it still holds the lock.
    expect(await holders(key)).toEqual([first]);

    proxy.heal();
    await waitFor(async () => notifier!.connected && (await holders(key)).length === 1 && (await holders(key))[0] !== first, {
      timeoutMs: 15_000,
      intervalMs: 50,
      message: 'the node lock is held by the new session',
    });
    const { rows } = await admin.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [first]);
    expect(rows, 'the lost session was ended').toEqual([]);
  });
});
