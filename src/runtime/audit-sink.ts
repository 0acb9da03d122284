/**
 * Where operator actions are recorded. The runtime carries one for the routes
 * (`runtime.audit`) but does not build it: the composition root injects the
 * signed, chained trail of ops/audit/audit-trail.ts, so runtime/ never
 * imports ops/ (the layer above it).
 */
import type { AuditRecord } from '../core/types.js';

/** One operator action; ops/audit/audit-trail.ts `OperatorAction` narrows `action` to the known names. */
export interface AuditSinkEntry {
  actor: string;
  requestId?: string | null;
  action: string;
  target?: string | null;
  before?: unknown;
  after?: unknown;
}

/**
 * @example
 * const runtime = new Runtime({ ..., audit: new AuditTrail({ store, key }) });
 * await runtime.audit.record({ actor: 'key_abc', action: 'job.cancel', target: 'job:42' });
 */
export interface AuditSink {
  /** Append one record; resolves once it is committed. */
  record(entry: AuditSinkEntry): Promise<AuditRecord>;
}
