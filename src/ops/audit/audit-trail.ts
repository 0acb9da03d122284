/**
 * The audit trail the runtime carries (`runtime.audit`): one call records one
 * operator action, chained and signed, in the store. Route and command
 * authors call `recordOperatorAction` (HTTP) or `audit.record` (CLI); see
 * `AUDIT_ACTIONS` for the names in use.
 */
import { userInfo, hostname } from 'node:os';
import type { AuditRecord } from '../../core/types.js';
import type { AuditSeal, AuditStore } from '../../store/engine.js';
import { asStoredJson } from './canonical.js';
import { sealWith } from './chain.js';
import type { NodeKey } from './node-key.js';
import type { AuditSink } from '../../runtime/audit-sink.js';

/**
 * Every operator action Drover records. Add the name here when you add an
 * action, so the list in docs/operations.md stays whole.
 */
export const AUDIT_ACTIONS = [
  'job.cancel',
  'job.retry',
  'job.bulk-retry',
  'job.bulk-cancel',
  'interrupt.resume',
  'key.create',
  'key.revoke',
  'handler.pause',
  'handler.resume',
  'handler.reset',
  'queue.pause',
  'queue.resume',
  'log.level',
  'trigger.create',
  'trigger.delete',
  'trigger.rotate-secret',
  'trigger.retire-secret',
  'backup.create',
  'backup.restore',
  'snapshot.create',
  'snapshot.delete',
  'gate.set',
  'config.reload',
  'mcp.tool-call',
] as const;

export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export interface OperatorAction {
  /** API key id, or `cliActor()` for a command run on the box. */
  actor: string;
  requestId?: string | null;
  action: AuditAction;
  /** `kind:id`, e.g. `job:42`, `handler:email`, `key:key_…`. */
  target?: string | null;
  before?: unknown;
  after?: unknown;
}

/**
 * @example
 * const audit = new AuditTrail({ store, key: loadOrCreateNodeKey(dataDir) });
 * await audit.record({ actor: 'key_abc', requestId: 'req-1', action: 'job.cancel', target: 'job:42', before: { state: 'queued' }, after: { state: 'cancelled' } });
 */
export class AuditTrail implements AuditSink {
  readonly key: NodeKey;
  readonly #store: AuditStore;
  readonly #clock: () => number;
  readonly #seal: AuditSeal;
  readonly #listeners = new Set<(record: AuditRecord) => void>();

  constructor(options: { store: AuditStore; key: NodeKey; clock?: () => number }) {
    this.#store = options.store;
    this.key = options.key;
    this.#clock = options.clock ?? Date.now;
    this.#seal = sealWith(options.key);
  }

  /** Append one record; resolves once it is committed. */
  async record(action: OperatorAction): Promise<AuditRecord> {
    const record = await this.#store.appendAudit(
      {
        time: new Date(this.#clock()).toISOString(),
        actor: action.actor,
        requestId: action.requestId ?? null,
        action: action.action,
        target: action.target ?? null,
        // Hash what the store will give back, so a record verifies after a round trip.
        before: asStoredJson(action.before),
        after: asStoredJson(action.after),
      },
      this.#seal,
    );
    for (const listener of this.#listeners) {
      try {
        listener(record);
      } catch {
        // An observer's bug must not fail an action that is already recorded.
      }
    }
    return record;
  }

  /** Observe committed records (SSE, metrics); returns an unsubscribe function. */
  onRecord(listener: (record: AuditRecord) => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }
}

/**
 * The actor for commands run on the box: `cli:<user>@<host>`.
 *
 * @example
 * cliActor(); // 'cli:ops@db-1'
 */
export function cliActor(): string {
  let user = process.env.USER || process.env.LOGNAME || 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (containers with arbitrary uids): keep the environment's name.
  }
  return `cli:${user}@${hostname()}`;
}
