/**
 * `GET /v1/audit`: the audit trail of operator actions, newest first, with a
 * keyset cursor. Each record carries its hash, the previous record's hash and
 * its signature, so a client can check what it reads (see docs/operations.md).
 */
import type { FastifyInstance } from 'fastify';
import { DroverError } from '../../core/errors.js';
import { recordLine } from '../../ops/audit/export.js';
import type { Runtime } from '../../runtime/runtime.js';
import { routeConfig } from './scopes.js';

const DEFAULT_LIMIT = 200;
const MAX_LIMIT = 1000;

const query = {
  type: 'object',
  additionalProperties: false,
  properties: {
    limit: { type: 'string', pattern: '^[0-9]{1,5}$' },
    cursor: { type: 'string', pattern: '^[1-9][0-9]{0,14}$' },
  },
} as const;

/** What the audit routes need from the node (reads the audit trail from the store): the runtime satisfies it. */
export type AuditRouteDeps = Pick<Runtime, 'store'>;

export function auditRoutes(runtime: AuditRouteDeps) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    app.get<{ Querystring: { limit?: string; cursor?: string } }>('/v1/audit', { config: routeConfig('GET /v1/audit'), schema: { querystring: query } }, async (request) => {
      const limit = request.query.limit === undefined ? DEFAULT_LIMIT : Number(request.query.limit);
      if (limit < 1 || limit > MAX_LIMIT) throw new DroverError('validation', `limit: expected an integer from 1 to ${MAX_LIMIT}`);
      const records = await runtime.store.listAudit({ limit, ...(request.query.cursor ? { before: Number(request.query.cursor) } : {}) });
      const last = records[records.length - 1];
      return {
        records: records.map((record) => JSON.parse(recordLine(record)) as unknown),
        nextCursor: records.length === limit && last && last.seq > 1 ? String(last.seq) : null,
      };
    });
  };
}
