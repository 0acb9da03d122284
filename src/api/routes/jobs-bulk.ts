/**
 * `POST /v1/jobs/bulk`: retry or cancel every job a filter matches, as work
 * the node tracks (`ops/bulk-jobs.ts`); `GET /v1/jobs/bulk/:id` shows its
 * progress, `GET /v1/jobs/bulk` the recent runs. The run is one audit record
 * (the filter and the action); each job's change emits its lifecycle event
 * as a single retry or cancel does.
 */
import type { FastifyInstance } from 'fastify';
import { DroverError } from '../../core/errors.js';
import { MAX_PAYLOAD_FILTERS, parsePayloadPath } from '../../core/payload-filter.js';
import { JOB_STATES, type JobState } from '../../core/types.js';
import { recordOperatorAction } from '../../ops/audit/operator-action.js';
import type { BulkAction, BulkFilter, BulkJobs, BulkRun } from '../../ops/bulk-jobs.js';
import type { AuditSink } from '../../runtime/audit-sink.js';
import { routeConfig } from './scopes.js';

const startBody = {
  type: 'object',
  required: ['action', 'filter'],
  additionalProperties: false,
  properties: {
    action: { type: 'string', enum: ['retry', 'cancel'] },
    filter: {
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      properties: {
        state: { type: 'string', enum: [...JOB_STATES] },
        handler: { type: 'string', minLength: 1, maxLength: 100 },
        queue: { type: 'string', minLength: 1, maxLength: 100 },
        createdAfter: { type: 'string', format: 'date-time' },
        createdBefore: { type: 'string', format: 'date-time' },
        payload: { type: 'object', minProperties: 1, maxProperties: MAX_PAYLOAD_FILTERS, additionalProperties: { type: 'string', maxLength: 500 } },
      },
    },
  },
} as const;

interface StartBody {
  action: BulkAction;
  filter: { state?: JobState; handler?: string; queue?: string; createdAfter?: string; createdBefore?: string; payload?: Record<string, string> };
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const runJson = (run: BulkRun) => ({ ...run, startedAt: iso(run.startedAt), finishedAt: iso(run.finishedAt) });

/**
 * @example
 * await app.register(bulkJobRoutes({ bulk: new BulkJobs({ store, jobControl, clock, nodeId }), audit }));
 */
export function bulkJobRoutes(deps: { bulk: BulkJobs; audit: AuditSink }) {
  const { bulk } = deps;
  return async function plugin(app: FastifyInstance): Promise<void> {
    app.addHook('onClose', async () => bulk.close());

    app.post<{ Body: StartBody }>('/v1/jobs/bulk', { config: routeConfig('POST /v1/jobs/bulk'), schema: { body: startBody } }, async (request, reply) => {
      const { action, filter: given } = request.body;
      const filter: BulkFilter = {
        ...(given.state ? { state: given.state } : {}),
        ...(given.handler ? { handler: given.handler } : {}),
        ...(given.queue ? { queue: given.queue } : {}),
        ...(given.createdAfter ? { createdAfter: Date.parse(given.createdAfter) } : {}),
        ...(given.createdBefore ? { createdBefore: Date.parse(given.createdBefore) } : {}),
        ...(given.payload ? { payload: Object.entries(given.payload).map(([field, value]) => ({ path: parsePayloadPath(field), value })) } : {}),
      };
      const run = await bulk.start(action, filter, request.apiKey?.id ?? 'anonymous');
      await recordOperatorAction(deps, request, { action: `job.bulk-${action}`, target: `bulk:${run.id}`, before: null, after: { filter: given } });
      return reply.code(202).send(runJson(run));
    });

    app.get('/v1/jobs/bulk', { config: routeConfig('GET /v1/jobs/bulk') }, async () => ({ runs: (await bulk.list()).map(runJson) }));

    app.get<{ Params: { id: string } }>(
      '/v1/jobs/bulk/:id',
      { config: routeConfig('GET /v1/jobs/bulk/:id'), schema: { params: { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 100 } } } } },
      async (request) => {
        const run = await bulk.get(request.params.id);
        if (!run) throw new DroverError('not_found', `no bulk run "${request.params.id}" (the last 50 are kept); see GET /v1/jobs/bulk`);
        return runJson(run);
      },
    );
  };
}
