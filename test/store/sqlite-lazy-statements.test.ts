/**
 * The SQLite engine's fixed statements are prepared at their first use
 * (store/sqlite/lazy-statements.ts, issue 24 worker RSS): each one's SQL must
 * still fit the migrated schema, and a used statement is reached directly.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { DurableStatements } from '../../src/store/sqlite/durable-statements.js';
import { prepareEvery } from '../../src/store/sqlite/lazy-statements.js';
import { openSqliteEngine } from '../../src/store/sqlite/sqlite-engine.js';
import { SqliteStatements } from '../../src/store/sqlite/statements.js';
import { prepareTriggerStatements } from '../../src/store/sqlite/trigger-groups.js';

let dir = '';
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('sqlite fixed statements, prepared at first use', () => {
  it('every statement of the three sets prepares on the migrated schema; a used one replaces its placeholder', async () => {
    dir = mkdtempSync(join(tmpdir(), 'drover-lazy-stmt-'));
    const path = join(dir, 'drover.db');
    const engine = await openSqliteEngine({ path });
    await engine.migrate();
    await engine.close();

    const db = new Database(path);
    try {
      const statements = new SqliteStatements(db);
      const placeholder = statements.fixed.ping;
      expect(placeholder.get()).toEqual({ one: 1 });
      // The set now holds better-sqlite3's statement itself; the placeholder still works for whoever kept it.
      expect(statements.fixed.ping).not.toBe(placeholder);
      expect(statements.fixed.ping).toBeInstanceOf(Object.getPrototypeOf(db.prepare('SELECT 1')).constructor);
      expect(placeholder.get()).toEqual({ one: 1 });

      const fixed = Object.keys(statements.fixed).length;
      expect(prepareEvery(statements.fixed)).toBe(fixed - 1);
      const durable = new DurableStatements(db).fixed;
      expect(prepareEvery(durable)).toBe(Object.keys(durable).length);
      const triggers = prepareTriggerStatements(db);
      expect(prepareEvery(triggers)).toBe(Object.keys(triggers).length);
    } finally {
      db.close();
    }
  });
});
