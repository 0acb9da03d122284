/**
 * The PostgreSQL side of `MetaStore`: small key/value settings shared by the
 * nodes (the `meta` table), on the engine's general pool.
 */
import type pg from 'pg';
import { inTransaction, type Query } from './connection.js';
import * as q from './queries.js';

export async function getMeta(query: Query, key: string): Promise<string | null> {
  return (await query<{ value: string }>(q.GET_META, [key]))[0]?.value ?? null;
}

/** Read, update and write one key in a transaction; `update` answering null or the same value writes nothing. */
export function updateMeta(pool: pg.Pool, key: string, update: (current: string | null) => string | null): Promise<string | null> {
  return inTransaction(pool, async (client) => {
    // A transaction lock on the key, not a row lock: the row may not exist yet.
    await client.query(q.LOCK_META_KEY, [key]);
    const current = (await client.query<{ value: string }>(q.GET_META, [key])).rows[0]?.value ?? null;
    const next = update(current);
    if (next === null || next === current) return current;
    await client.query(q.SET_META, [key, next]);
    return next;
  });
}
