/**
 * A set of statements, each prepared at its first use rather than when the
 * set is built (issue 24, worker RSS). A prepared statement keeps its
 * compiled program in SQLite's memory: the engine's ~90 fixed statements held
 * ~1.7 MiB of a node's malloc heap, and a worker draining plain jobs runs
 * about a dozen of them. The first call replaces the set's property with the
 * prepared statement, so later reads through the set reach it directly; a
 * caller that kept the placeholder (JobInserts keeps `insertJob`) goes
 * through it. A statement whose SQL does not fit the schema now fails at its
 * first use, not at open: `unfinishedByQueue`, run at open, still says a store
 * is not migrated.
 */
import type Database from 'better-sqlite3';
import type { Stmt } from './statements.js';

export type Prepare = <P extends unknown[] | object, R = unknown>(sql: string) => Stmt<P, R>;

export function lazyStatements<T extends object>(db: Database.Database, build: (p: Prepare) => T): T {
  const set = build((sql) => new LazyStatement(db, sql) as unknown as Stmt<never, never>);
  for (const [key, value] of Object.entries(set)) if (value instanceof LazyStatement) value.owner = [set as Record<string, unknown>, key];
  return set;
}

/** Prepare every statement of a set now (a check that each one's SQL fits the schema). */
export function prepareEvery(set: object): number {
  let prepared = 0;
  for (const value of Object.values(set)) if (value instanceof LazyStatement && value.prepare()) prepared++;
  return prepared;
}

type Params = never[];

class LazyStatement {
  owner: [Record<string, unknown>, string] | null = null;
  readonly #db: Database.Database;
  readonly #sql: string;
  #statement: Stmt<Params> | null = null;

  constructor(db: Database.Database, sql: string) {
    this.#db = db;
    this.#sql = sql;
  }

  /** Prepare it if it is not yet; true if this call did. */
  prepare(): boolean {
    if (this.#statement) return false;
    this.#prepared();
    return true;
  }

  #prepared(): Stmt<Params> {
    if (this.#statement) return this.#statement;
    const statement = this.#db.prepare(this.#sql) as unknown as Stmt<Params>;
    this.#statement = statement;
    if (this.owner) this.owner[0][this.owner[1]] = statement;
    return statement;
  }

  run(...params: Params) {
    return this.#prepared().run(...params);
  }

  get(...params: Params) {
    return this.#prepared().get(...params);
  }

  all(...params: Params) {
    return this.#prepared().all(...params);
  }

  iterate(...params: Params) {
    return this.#prepared().iterate(...params);
  }
}
