/**
 * The engine's prepared statements, prepared once the schema exists: at open
 * when the file is already migrated, else by the first call after `migrate()`.
 * A call on a store that is not migrated gets a `store_unavailable` that says
 * to run `drover migrate`, rather than a raw "no such table".
 */
import type Database from 'better-sqlite3';
import { DroverError } from '../../core/errors.js';
import { AuditStatements } from './audit.js';
import { DurableStatements } from './durable-statements.js';
import { SqliteStatements } from './statements.js';
import { prepareTriggerStatements, type TriggerStatements } from './trigger-groups.js';

export class PreparedStatements {
  readonly #db: Database.Database;
  readonly #path: string;
  /** Called with each fresh set before it is kept (the engine counts unfinished jobs from it). */
  readonly #loaded: (statements: SqliteStatements) => void;
  #statements: SqliteStatements | null = null;
  #durableStatements: DurableStatements | null = null;
  #triggerStatements: TriggerStatements | null = null;
  #auditStatements: AuditStatements | null = null;

  constructor(db: Database.Database, path: string, loaded: (statements: SqliteStatements) => void) {
    this.#db = db;
    this.#path = path;
    this.#loaded = loaded;
  }

  /** Prepare statements and count unfinished jobs; needs the migrated schema (throws the raw error without it). */
  prepare(): SqliteStatements {
    const statements = new SqliteStatements(this.#db);
    const durableStatements = new DurableStatements(this.#db);
    const triggerStatements = prepareTriggerStatements(this.#db);
    this.#loaded(statements);
    this.#durableStatements = durableStatements;
    this.#triggerStatements = triggerStatements;
    this.#statements = statements;
    return statements;
  }

  get s(): SqliteStatements {
    if (this.#statements) return this.#statements;
    try {
      return this.prepare();
    } catch (error) {
      throw new DroverError('store_unavailable', `the store ${this.#path} is not migrated; run \`drover migrate\``, {
        cause: error,
      });
    }
  }

  get d(): DurableStatements {
    if (this.#durableStatements) return this.#durableStatements;
    this.s; // prepares both, or says the store is not migrated
    return this.#durableStatements!;
  }

  get t(): TriggerStatements {
    if (this.#triggerStatements) return this.#triggerStatements;
    this.s; // prepares them all, or says the store is not migrated
    return this.#triggerStatements!;
  }

  get audit(): AuditStatements {
    if (this.#auditStatements) return this.#auditStatements;
    try {
      return (this.#auditStatements = new AuditStatements(this.#db));
    } catch (error) {
      throw new DroverError('store_unavailable', `the store ${this.#path} has no audit table; run \`drover migrate\``, { cause: error });
    }
  }
}
