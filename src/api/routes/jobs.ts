/** Reading and steering jobs and events. Cancel and retry are made by the runtime (`runtime/job-control.ts`); this records them in the audit trail. */
import type { FastifyInstance } from 'fastify';
import { DroverError } from '../../core/errors.js';
import { JOB_STATES, type JobState } from '../../core/types.js';
import { MAX_PAYLOAD_FILTERS, parsePayloadPath, type PayloadFilter } from '../../core/payload-filter.js';
import type { AuditSink } from '../../runtime/audit-sink.js';
import { recordOperatorAction } from '../../ops/audit/operator-action.js';
import type { JobControl } from '../../runtime/job-control.js';
import type { StorageEngine } from '../../store/engine.js';
import type { DurableStore } from '../../store/roles/durable-store.js';
import { attemptJson, eventJson, jobJson, jobRef, stepJson, waitJson } from '../serialize.js';

export const idParam = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 200 } },
} as const;

const jobQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { include: { type: 'string', enum: ['stepResults'] } },
} as const;

export const listQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    state: { type: 'string', enum: [...JOB_STATES] },
    handler: { type: 'string', minLength: 1, maxLength: 100 },
    queue: { type: 'string', minLength: 1, maxLength: 100 },
    limit: { type: 'string', pattern: '^[0-9]{1,4}$' },
    cursor: { type: 'string', pattern: '^[0-9]{1,19}$' },
    createdAfter: { type: 'string', format: 'date-time' },
    createdBefore: { type: 'string', format: 'date-time' },
  },
  // `payload.orderId=o-1`, `payload.customer.id=c-9`: the member must hold that value (core/payload-filter.ts).
  patternProperties: { '^payload\\.': { type: 'string', maxLength: 500 } },
} as const;

type ListQuery = { state?: JobState; handler?: string; queue?: string; limit?: string; cursor?: string; createdAfter?: string; createdBefore?: string } & Record<string, string | undefined>;

/** The payload filters of a list query, in the order given. */
function payloadFilters(query: ListQuery): PayloadFilter[] {
  const filters = Object.entries(query)
    .filter((entry): entry is [string, string] => entry[0].startsWith('payload.') && entry[1] !== undefined)
    .map(([name, value]) => ({ path: parsePayloadPath(name.slice('payload.'.length)), value }));
  if (filters.length > MAX_PAYLOAD_FILTERS) throw new DroverError('validation', `at most ${MAX_PAYLOAD_FILTERS} payload filters per search`);
  return filters;
}

/** What the job routes need from the node (the runtime provides it): reads, the operator actions, the audit trail. */
export interface JobRouteDeps {
  store: Pick<StorageEngine, 'getJob' | 'getAttempts' | 'listJobs' | 'getEvent' | 'eventMerges'> & Pick<DurableStore, 'getSteps' | 'pendingWait'>;
  jobControl: Pick<JobControl, 'cancel' | 'retry'>;
  audit: AuditSink;
}

export function jobRoutes(deps: JobRouteDeps) {
  const { store, jobControl } = deps;
  return async function plugin(app: FastifyInstance): Promise<void> {
    // Durable jobs also show their finished steps (sizes; results with ?include=stepResults) and, while suspended, their wait.
    app.get<{ Params: { id: string }; Querystring: { include?: 'stepResults' } }>(
      '/v1/jobs/:id',
      { config: { scope: ['read', 'produce'] }, schema: { params: idParam, querystring: jobQuery } },
      async (request) => {
        const job = await store.getJob(request.params.id);
        if (!job) throw new DroverError('not_found', `no job with id "${request.params.id}" (it may have been pruned after its retention period)`);
        const [attempts, steps, wait] = await Promise.all([
          store.getAttempts(job.id),
          store.getSteps(job.id),
          job.state === 'suspended' ? store.pendingWait(job.id) : null,
        ]);
        const withResults = request.query.include === 'stepResults';
        return { ...jobJson(job), attempts: attempts.map(attemptJson), steps: steps.map((step) => stepJson(step, withResults)), wait: wait ? waitJson(wait) : null };
      },
    );

    app.get<{ Querystring: ListQuery }>(
      '/v1/jobs',
      { config: { scope: ['read', 'produce'] }, schema: { querystring: listQuery } },
      async (request) => {
        const { state, handler, queue, cursor, createdAfter, createdBefore } = request.query;
        const payload = payloadFilters(request.query);
        const limit = request.query.limit === undefined ? 50 : Number(request.query.limit);
        if (limit < 1 || limit > 500) throw new DroverError('validation', 'limit: expected an integer from 1 to 500');
        const jobs = await store.listJobs({
          limit,
          ...(state ? { state } : {}),
          ...(handler ? { handler } : {}),
          ...(queue ? { queue } : {}),
          ...(cursor ? { before: cursor } : {}),
          ...(createdAfter ? { createdAfter: Date.parse(createdAfter) } : {}),
          ...(createdBefore ? { createdBefore: Date.parse(createdBefore) } : {}),
          ...(payload.length > 0 ? { payload } : {}),
        });
        const last = jobs[jobs.length - 1];
        return { jobs: jobs.map(jobJson), nextCursor: jobs.length === limit && last ? last.id : null };
      },
    );

    app.post<{ Params: { id: string } }>('/v1/jobs/:id/cancel', { config: { scope: 'admin' }, schema: { params: idParam } }, async (request) => {
      const { before, job } = await jobControl.cancel(request.params.id);
      await recordOperatorAction(deps, request, { action: 'job.cancel', target: `job:${before.id}`, before: { state: before.state }, after: { state: job.state } });
      return jobJson(job);
    });

    app.post<{ Params: { id: string } }>('/v1/jobs/:id/retry', { config: { scope: 'admin' }, schema: { params: idParam } }, async (request) => {
      const { before, job } = await jobControl.retry(request.params.id);
      await recordOperatorAction(deps, request, { action: 'job.retry', target: `job:${before.id}`, before: { state: before.state }, after: { state: job.state } });
      return jobJson(job);
    });

    app.get<{ Params: { id: string } }>('/v1/events/:id', { config: { scope: ['read', 'produce'] }, schema: { params: idParam } }, async (request) => {
      const event = await store.getEvent(request.params.id);
      if (!event) throw new DroverError('not_found', `no event with id "${request.params.id}"`);
      const [jobs, merges] = await Promise.all([store.listJobs({ eventId: event.id, limit: 500 }), store.eventMerges(event.id)]);
      // A debounced job's event_id names its latest event only; event_merges knows every event in it.
      const refs: Array<ReturnType<typeof jobRef> & { trigger?: { kind: string; merged: boolean } }> = jobs.filter((job) => !merges.some((m) => m.job.id === job.id)).map(jobRef);
      for (const m of merges) refs.push({ ...jobRef(m.job), trigger: { kind: m.kind, merged: m.merged } });
      return { ...eventJson(event), jobs: refs };
    });
  };
}
