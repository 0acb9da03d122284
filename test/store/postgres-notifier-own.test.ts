/**
 * A notifier skips the notices its own engine sent (it told its listeners
 * after the commit already) and passes on another engine's, with an id that
 * needs JSON escaping too. Real PostgreSQL, a channel of its own.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { clientConfig } from '../../src/store/postgres/connection.js';
import { Notifier, notifyPayload } from '../../src/store/postgres/notifier.js';
import { Woken } from '../../src/store/woken.js';
import { waitFor } from '../helpers/wait-for.js';

const PG_URL = process.env.DROVER_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const admin = new pg.Pool({ connectionString: PG_URL, max: 1 });
let notifier: Notifier | null = null;

afterAll(async () => {
  await notifier?.close();
  await admin.end();
});

describe('notifier: own notices', () => {
  it('skips its own engine\'s notices and passes on another\'s', async () => {
    const channel = `drover_test_${randomUUID().slice(0, 8)}`;
    const self = `node "a"\\${randomUUID()}`;
    const seen: string[][] = [];
    notifier = new Notifier({
      config: clientConfig({ url: PG_URL, schema: 'public', applicationName: 'drover-notifier-own-test' }),
      channel,
      instanceId: self,
      onWork: (queues) => void seen.push([...queues]),
    });
    await notifier.start();
    const send = (from: string, queue: string) => admin.query('SELECT pg_notify($1, $2)', [channel, notifyPayload(from, Woken.of([queue], ['h']))]);
    await send(self, 'mine');
    await send(`${self}x`, 'theirs');
    await send(self, 'mine-again');
    await send('other', 'last');
    await waitFor(() => seen.some((queues) => queues.includes('last')), { timeoutMs: 5_000 });
    expect(seen).toEqual([['theirs'], ['last']]);
  });
});
