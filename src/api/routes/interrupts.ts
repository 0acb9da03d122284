/**
 * `/v1/interrupts`: the pending questions of durable jobs
 * (`ctx.step.interrupt`) and the resume that answers one
 * (docs/durable-execution.md).
 *
 * Scope `resume` (or `admin`): an approval tool lists, reads and resumes
 * interrupts and can do nothing else; it neither produces work nor reads
 * jobs, and a `read` or `produce` key cannot resume. An interrupt is found by
 * its id alone, in the waits table, never through a job id a caller names,
 * so a resume cannot be pointed at another job's step. The resume itself
 * (schema check, compare-and-set, wake-up) is the runtime's
 * (`runtime/job-control.ts`); this records it in the audit trail with the
 * key that made it.
 */
import type { FastifyInstance } from 'fastify';
import type { DurableLimits, WaitState } from '../../core/durable.js';
import { DroverError } from '../../core/errors.js';
import { recordOperatorAction } from '../../ops/audit/operator-action.js';
import type { AuditSink } from '../../runtime/audit-sink.js';
import { auditedInput } from '../../runtime/interrupt-input.js';
import type { JobControl } from '../../runtime/job-control.js';
import type { DurableStore } from '../../store/roles/durable-store.js';
import { interruptJson, jobJson } from '../serialize.js';
import { routeConfig } from './scopes.js';

const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 500;

/** The API's names for a wait's states (`resolved` reads `resumed`). */
const STATES = { pending: 'pending', resumed: 'resolved', timed_out: 'timed_out', cancelled: 'cancelled' } as const satisfies Record<string, WaitState>;
type ApiState = keyof typeof STATES;

const idParam = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 200 } },
} as const;

const listQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    state: { type: 'string', enum: Object.keys(STATES) },
    handler: { type: 'string', minLength: 1, maxLength: 100 },
    limit: { type: 'string', pattern: '^[0-9]{1,4}$' },
    cursor: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,200}$' },
  },
} as const;

const resumeBody = {
  type: 'object',
  required: ['input'],
  additionalProperties: false,
  // Any JSON; the interrupt's own schema is checked by the runtime, naming the field under `input`.
  properties: { input: {} },
} as const;

/** What the interrupt routes need from the node: the runtime satisfies it. */
export interface InterruptRouteDeps {
  config: { durable: Pick<DurableLimits, 'maxStepResultBytes'> };
  store: Pick<DurableStore, 'getWait' | 'listWaits'>;
  jobControl: Pick<JobControl, 'resumeInterrupt'>;
  audit: AuditSink;
}

export function interruptRoutes(deps: InterruptRouteDeps) {
  const { store, jobControl } = deps;
  const find = async (id: string) => {
    const wait = await store.getWait(id);
    if (!wait || wait.kind !== 'interrupt') throw new DroverError('not_found', `no interrupt with id "${id}"; list them with GET /v1/interrupts`);
    return wait;
  };

  return async function plugin(app: FastifyInstance): Promise<void> {
    app.get<{ Querystring: { state?: ApiState; handler?: string; limit?: string; cursor?: string } }>(
      '/v1/interrupts',
      { config: routeConfig('GET /v1/interrupts'), schema: { querystring: listQuery } },
      async (request) => {
        const { state, handler, cursor } = request.query;
        const limit = request.query.limit === undefined ? DEFAULT_LIMIT : Number(request.query.limit);
        if (limit < 1 || limit > MAX_LIMIT) throw new DroverError('validation', `limit: expected an integer from 1 to ${MAX_LIMIT}`);
        const waits = await store.listWaits({
          kind: 'interrupt',
          limit,
          ...(state ? { state: STATES[state] } : {}),
          ...(handler ? { handler } : {}),
          ...(cursor ? { before: cursor } : {}),
        });
        const last = waits[waits.length - 1];
        return { interrupts: waits.map(interruptJson), nextCursor: waits.length === limit && last ? last.id : null };
      },
    );

    app.get<{ Params: { id: string } }>('/v1/interrupts/:id', { config: routeConfig('GET /v1/interrupts/:id'), schema: { params: idParam } }, async (request) =>
      interruptJson(await find(request.params.id)),
    );

    app.post<{ Params: { id: string }; Body: { input: unknown } }>(
      '/v1/interrupts/:id/resume',
      { config: routeConfig('POST /v1/interrupts/:id/resume'), schema: { params: idParam, body: resumeBody } },
      async (request) => {
        const actor = request.apiKey?.id ?? 'anonymous';
        const { wait, job } = await jobControl.resumeInterrupt(request.params.id, request.body.input, actor, { maxInputBytes: deps.config.durable.maxStepResultBytes });
        await recordOperatorAction(deps, request, {
          action: 'interrupt.resume',
          target: `interrupt:${wait.id}`,
          before: { state: 'pending' },
          // The input by hash and size, and its value only when small, credentials redacted (interrupt-input.ts).
          after: { state: 'resumed', jobId: job.id, handler: wait.handler, step: wait.step, ...auditedInput(request.body.input, wait.schema) },
        });
        request.log.info({ interrupt: wait.id, job_id: job.id, handler: wait.handler, step: wait.step, key_id: actor }, 'interrupt resumed');
        return { interrupt: interruptJson(wait), job: jobJson(job) };
      },
    );
  };
}
