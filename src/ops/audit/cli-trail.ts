/**
 * The audit trail as a command run on the box sees it: signed with the node
 * key from the data directory (so records from the CLI and from the node form
 * one verifiable chain), with `cli:<user>@<host>` as the actor.
 */
import type { AuditRecord } from '../../core/types.js';
import type { AuditStore } from '../../store/engine.js';
import { dataDirFor } from '../data-dir.js';
import { AuditTrail, cliActor, type OperatorAction } from './audit-trail.js';
import { loadOrCreateNodeKey } from './node-key.js';

export interface CliAudit {
  trail: AuditTrail;
  actor: string;
  record(action: Omit<OperatorAction, 'actor' | 'requestId'>): Promise<AuditRecord>;
}

/**
 * @example
 * const audit = cliAudit(store, databaseUrlFromEnv());
 * await audit.record({ action: 'key.revoke', target: `key:${id}` });
 */
export function cliAudit(store: AuditStore, databaseUrl: string): CliAudit {
  const trail = new AuditTrail({ store, key: loadOrCreateNodeKey(dataDirFor(databaseUrl)) });
  const actor = cliActor();
  return { trail, actor, record: (action) => trail.record({ ...action, actor }) };
}
