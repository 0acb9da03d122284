/** Reading and steering jobs and events. */
import type { FastifyInstance } from 'fastify';
import { DroverError } from '../../core/errors.js';
import { JOB_STATES, type JobState } from '../../core/types.js';
import { recordOperatorAction } from '../../ops/audit/operator-action.js';
import type { Runtime } from '../../runtime/runtime.js';
import { attemptJson, eventJson, jobJson, jobRef } from '../serialize.js';

const idParam = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 200 } },
} as const;

const listQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    state: { type: 'string', enum: [...JOB_STATES] },
    handler: { type: 'string', minLength: 1, maxLength: 100 },
    queue: { type: 'string', minLength: 1, maxLength: 100 },
    limit: { type: 'string', pattern: '^[0-9]{1,4}$' },
    cursor: { type: 'string', pattern: '^[0-9]{1,19}$' },
  },
} as const;

export function jobRoutes(runtime: Runtime) {
  const { store } = runtime;
  return async function plugin(app: FastifyInstance): Promise<void> {
    app.get<{ Params: { id: string } }>('/v1/jobs/:id', { config: { scope: ['read', 'produce'] }, schema: { params: idParam } }, async (request) => {
      const job = await store.getJob(request.params.id);
      if (!job) throw new DroverError('not_found', `no job with id "${request.params.id}" (it may have been pruned after its retention period)`);
      const attempts = await store.getAttempts(job.id);
      return { ...jobJson(job), attempts: attempts.map(attemptJson) };
    });

    app.get<{ Querystring: { state?: JobState; handler?: string; queue?: string; limit?: string; cursor?: string } }>(
      '/v1/jobs',
      { config: { scope: ['read', 'produce'] }, schema: { querystring: listQuery } },
      async (request) => {
        const { state, handler, queue, cursor } = request.query;
        const limit = request.query.limit === undefined ? 50 : Number(request.query.limit);
        if (limit < 1 || limit > 500) throw new DroverError('validation', 'limit: expected an integer from 1 to 500');
        const jobs = await store.listJobs({
          limit,
          ...(state ? { state } : {}),
          ...(handler ? { handler } : {}),
          ...(queue ? { queue } : {}),
          ...(cursor ? { before: cursor } : {}),
        });
        const last = jobs[jobs.length - 1];
        return { jobs: jobs.map(jobJson), nextCursor: jobs.length === limit && last ? last.id : null };
      },
    );

    app.post<{ Params: { id: string } }>('/v1/jobs/:id/cancel', { config: { scope: 'admin' }, schema: { params: idParam } }, async (request) => {
      const before = await store.getJob(request.params.id);
      if (!before) throw new DroverError('not_found', `no job with id "${request.params.id}"`);
      if (before.state === 'succeeded' || before.state === 'dead' || before.state === 'cancelled') {
        throw new DroverError('invalid_state', `job ${before.id} is ${before.state}; only unfinished jobs can be cancelled`, { extensions: { state: before.state } });
      }
      const job = await store.cancel(before.id);
      if (job) runtime.lifecycle.emit('job:cancelled', { job });
      await recordOperatorAction(runtime, request, { action: 'job.cancel', target: `job:${before.id}`, before: { state: before.state }, after: { state: (job ?? before).state } });
      return jobJson(job ?? before);
    });

    app.post<{ Params: { id: string } }>('/v1/jobs/:id/retry', { config: { scope: 'admin' }, schema: { params: idParam } }, async (request) => {
      const before = await store.getJob(request.params.id);
      if (!before) throw new DroverError('not_found', `no job with id "${request.params.id}"`);
      if (before.state !== 'dead' && before.state !== 'cancelled') {
        throw new DroverError('invalid_state', `job ${before.id} is ${before.state}; only dead or cancelled jobs can be retried`, { extensions: { state: before.state } });
      }
      const job = await store.retry(before.id);
      if (job) runtime.lifecycle.emit('job:retried', { job });
      await recordOperatorAction(runtime, request, { action: 'job.retry', target: `job:${before.id}`, before: { state: before.state }, after: { state: (job ?? before).state } });
      return jobJson(job ?? before);
    });

    app.get<{ Params: { id: string } }>('/v1/events/:id', { config: { scope: ['read', 'produce'] }, schema: { params: idParam } }, async (request) => {
      const event = await store.getEvent(request.params.id);
      if (!event) throw new DroverError('not_found', `no event with id "${request.params.id}"`);
      const jobs = await store.listJobs({ eventId: event.id, limit: 500 });
      return { ...eventJson(event), jobs: jobs.map(jobRef) };
    });
  };
}
