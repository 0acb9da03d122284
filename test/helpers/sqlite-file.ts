/** Checks on a SQLite store's file, read on a connection of their own after the engine closed it. */
import Database from 'better-sqlite3';
import { expect } from 'vitest';

/** No dangling foreign key and an intact file: what a migration or an upgrade must leave. */
export function expectIntactSqliteFile(path: string): void {
  const check = new Database(path, { readonly: true });
  try {
    expect(check.pragma('foreign_key_check')).toEqual([]);
    expect(check.pragma('integrity_check', { simple: true })).toBe('ok');
  } finally {
    check.close();
  }
}
