/**
 * Runtime triggers with the built-in webhook action (runtime/webhooks.ts):
 * create, list, delete, and rotate the signing secret. Admin only; every
 * change is recorded in the audit trail. Answers and audit records show a
 * trigger only through `triggerJson` (header values, query values and
 * secrets redacted); a secret's value is answered once, when it is made.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { DroverError } from '../../core/errors.js';
import { recordOperatorAction } from '../../ops/audit/operator-action.js';
import type { Runtime } from '../../runtime/runtime.js';
import { triggerJson, type TriggerInput } from '../../runtime/webhooks.js';
import { routeConfig } from './scopes.js';

const createBody = {
  type: 'object',
  required: ['on', 'action'],
  additionalProperties: false,
  properties: {
    on: { type: 'string', minLength: 1, maxLength: 200 },
    filter: {},
    action: {
      type: 'object',
      required: ['type', 'url'],
      additionalProperties: false,
      properties: {
        type: { type: 'string', enum: ['webhook'] },
        url: { type: 'string', minLength: 1, maxLength: 2048 },
        secret: { type: 'string', minLength: 16, maxLength: 256 },
        timeoutMs: { type: 'integer', minimum: 100 },
        headers: { type: 'object', additionalProperties: { type: 'string', maxLength: 4096 }, maxProperties: 32 },
      },
    },
  },
} as const;

const rotateBody = {
  type: 'object',
  additionalProperties: false,
  properties: { secret: { type: 'string', minLength: 16, maxLength: 256 } },
} as const;

const retireBody = {
  type: 'object',
  additionalProperties: false,
  properties: { secretId: { type: 'string', minLength: 1, maxLength: 100 } },
} as const;

/** Rotate and retire take an optional body: none at all means `{}`. */
async function emptyBodyIsEmptyObject(request: FastifyRequest): Promise<void> {
  if (request.body === undefined || request.body === null) request.body = {};
}

const idParam = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 100 } },
} as const;

/** What the triggers routes need from the node (runtime triggers, audited): the runtime satisfies it. */
export type TriggerRouteDeps = Pick<Runtime, 'webhooks' | 'audit'>;

export function triggerRoutes(runtime: TriggerRouteDeps) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    app.post('/v1/triggers', { config: routeConfig('POST /v1/triggers'), schema: { body: createBody } }, async (request: FastifyRequest<{ Body: TriggerInput }>, reply) => {
      const trigger = await runtime.webhooks.create(request.body);
      const json = triggerJson(trigger);
      await recordOperatorAction(runtime, request, { action: 'trigger.create', target: `trigger:${trigger.id}`, before: null, after: json });
      request.log.info({ trigger_id: trigger.id, on: trigger.on, key_id: request.apiKey?.id ?? null }, 'trigger created');
      reply.code(201);
      return { ...json, secret: trigger.action.secrets[0]!.secret };
    });
    app.get('/v1/triggers', { config: routeConfig('GET /v1/triggers') }, async () => ({
      triggers: runtime.webhooks.list().map(triggerJson),
      breakers: runtime.webhooks.breakerView(),
    }));
    app.delete('/v1/triggers/:id', { config: routeConfig('DELETE /v1/triggers/:id'), schema: { params: idParam } }, async (request: FastifyRequest<{ Params: { id: string } }>) => {
      const removed = await runtime.webhooks.delete(request.params.id);
      if (!removed) throw new DroverError('not_found', `no trigger with id "${request.params.id}"`);
      const json = triggerJson(removed);
      await recordOperatorAction(runtime, request, { action: 'trigger.delete', target: `trigger:${removed.id}`, before: json, after: null });
      request.log.info({ trigger_id: removed.id, key_id: request.apiKey?.id ?? null }, 'trigger deleted');
      return { ...json, deleted: true };
    });
    app.post<{ Params: { id: string }; Body: { secret?: string } | undefined }>('/v1/triggers/:id/rotate-secret', { config: routeConfig('POST /v1/triggers/:id/rotate-secret'), schema: { params: idParam, body: rotateBody }, preValidation: emptyBodyIsEmptyObject }, async (request) => {
      const changed = await runtime.webhooks.rotateSecret(request.params.id, request.body?.secret);
      if (!changed) throw new DroverError('not_found', `no trigger with id "${request.params.id}"`);
      const json = triggerJson(changed.after);
      await recordOperatorAction(runtime, request, { action: 'trigger.rotate-secret', target: `trigger:${changed.after.id}`, before: triggerJson(changed.before), after: json });
      request.log.info({ trigger_id: changed.after.id, secret_id: changed.secret.id, key_id: request.apiKey?.id ?? null }, 'trigger secret added');
      return { ...json, secretId: changed.secret.id, secret: changed.secret.secret };
    });
    app.post<{ Params: { id: string }; Body: { secretId?: string } | undefined }>('/v1/triggers/:id/retire-secret', { config: routeConfig('POST /v1/triggers/:id/retire-secret'), schema: { params: idParam, body: retireBody }, preValidation: emptyBodyIsEmptyObject }, async (request) => {
      const changed = await runtime.webhooks.retireSecret(request.params.id, request.body?.secretId);
      if (!changed) throw new DroverError('not_found', `no trigger with id "${request.params.id}"`);
      const json = triggerJson(changed.after);
      await recordOperatorAction(runtime, request, { action: 'trigger.retire-secret', target: `trigger:${changed.after.id}`, before: triggerJson(changed.before), after: json });
      request.log.info({ trigger_id: changed.after.id, secret_id: changed.secret.id, key_id: request.apiKey?.id ?? null }, 'trigger secret retired');
      return { ...json, retiredSecretId: changed.secret.id };
    });
  };
}
