/**
 * Runtime triggers with the built-in actions (runtime/actions/): create,
 * list, delete, and rotate a webhook's signing secret. Admin only; every
 * change is recorded in the audit trail. Answers and audit records show a
 * trigger only through `triggerJson` (header values, query values and
 * secrets redacted); a secret's value is answered once, when it is made.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { DroverError } from '../../core/errors.js';
import { recordOperatorAction } from '../../ops/audit/operator-action.js';
import { MAX_TEMPLATE_CHARS } from '../../core/template.js';
import { HTTP_METHODS } from '../../runtime/actions/http.js';
import { triggerJson, type TriggerInput } from '../../runtime/actions/runtime-triggers.js';
import { secretRefSchema } from '../../runtime/actions/secret-ref.js';
import { PARSE_MODES } from '../../runtime/actions/telegram.js';
import type { Runtime } from '../../runtime/runtime.js';
import { routeConfig } from './scopes.js';

const headersSchema = { type: 'object', additionalProperties: { type: 'string', maxLength: 4096 }, maxProperties: 32 } as const;
const urlSchema = { type: 'string', minLength: 1, maxLength: 2048 } as const;
const timeoutSchema = { type: 'integer', minimum: 100 } as const;

/** The `action` member, one schema per kind (docs/actions.md). */
const actionSchemas = [
  {
    type: 'object',
    required: ['type', 'url'],
    additionalProperties: false,
    properties: {
      type: { type: 'string', enum: ['webhook'] },
      url: urlSchema,
      secret: { type: 'string', minLength: 16, maxLength: 256 },
      timeoutMs: timeoutSchema,
      headers: headersSchema,
    },
  },
  {
    type: 'object',
    required: ['type', 'url'],
    additionalProperties: false,
    properties: {
      type: { type: 'string', enum: ['http'] },
      url: urlSchema,
      method: { type: 'string', enum: [...HTTP_METHODS] },
      headers: headersSchema,
      body: {},
      expectedStatuses: { type: 'array', minItems: 1, maxItems: 20, items: { type: 'integer', minimum: 100, maximum: 599 } },
      timeoutMs: timeoutSchema,
    },
  },
  {
    type: 'object',
    required: ['type', 'token', 'chatId', 'text'],
    additionalProperties: false,
    properties: {
      type: { type: 'string', enum: ['telegram'] },
      token: secretRefSchema,
      chatId: { anyOf: [{ type: 'string', minLength: 1, maxLength: 100 }, { type: 'integer' }] },
      text: { type: 'string', minLength: 1, maxLength: MAX_TEMPLATE_CHARS },
      parseMode: { type: 'string', enum: [...PARSE_MODES] },
      disableNotification: { type: 'boolean' },
      timeoutMs: timeoutSchema,
    },
  },
  {
    type: 'object',
    required: ['type', 'url', 'tool'],
    additionalProperties: false,
    properties: {
      type: { type: 'string', enum: ['mcp'] },
      url: urlSchema,
      tool: { type: 'string', minLength: 1, maxLength: 200 },
      arguments: { type: 'object' },
      auth: {
        type: 'object',
        required: ['value'],
        additionalProperties: false,
        properties: { header: { type: 'string', pattern: '^[A-Za-z0-9-]{1,100}$' }, value: secretRefSchema },
      },
      timeoutMs: timeoutSchema,
    },
  },
] as const;

const createBody = {
  type: 'object',
  required: ['on', 'action'],
  additionalProperties: false,
  properties: {
    on: { type: 'string', minLength: 1, maxLength: 200 },
    filter: {},
    // Checked by the runtime (core/trigger-control.ts), whose messages name the exact key.
    debounce: {},
    throttle: {},
    batch: {},
    // The discriminator makes validation pick the branch by `type`, so errors name that kind's fields only.
    action: { type: 'object', required: ['type'], discriminator: { propertyName: 'type' }, oneOf: actionSchemas },
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
export type TriggerRouteDeps = Pick<Runtime, 'triggers' | 'audit'>;

export function triggerRoutes(runtime: TriggerRouteDeps) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    app.post('/v1/triggers', { config: routeConfig('POST /v1/triggers'), schema: { body: createBody } }, async (request: FastifyRequest<{ Body: TriggerInput }>, reply) => {
      const trigger = await runtime.triggers.create(request.body);
      const json = triggerJson(trigger);
      await recordOperatorAction(runtime, request, { action: 'trigger.create', target: `trigger:${trigger.id}`, before: null, after: json });
      request.log.info({ trigger_id: trigger.id, on: trigger.on, key_id: request.apiKey?.id ?? null }, 'trigger created');
      reply.code(201);
      // A webhook's generated signing secret is shown here, once; other kinds hold no secret Drover made.
      return trigger.action.type === 'webhook' ? { ...json, secret: trigger.action.secrets[0]!.secret } : json;
    });
    app.get('/v1/triggers', { config: routeConfig('GET /v1/triggers') }, async () => ({
      triggers: runtime.triggers.list().map(triggerJson),
      breakers: runtime.triggers.breakerView(),
    }));
    app.delete('/v1/triggers/:id', { config: routeConfig('DELETE /v1/triggers/:id'), schema: { params: idParam } }, async (request: FastifyRequest<{ Params: { id: string } }>) => {
      const removed = await runtime.triggers.delete(request.params.id);
      if (!removed) throw new DroverError('not_found', `no trigger with id "${request.params.id}"`);
      const json = triggerJson(removed);
      await recordOperatorAction(runtime, request, { action: 'trigger.delete', target: `trigger:${removed.id}`, before: json, after: null });
      request.log.info({ trigger_id: removed.id, key_id: request.apiKey?.id ?? null }, 'trigger deleted');
      return { ...json, deleted: true };
    });
    app.post<{ Params: { id: string }; Body: { secret?: string } | undefined }>('/v1/triggers/:id/rotate-secret', { config: routeConfig('POST /v1/triggers/:id/rotate-secret'), schema: { params: idParam, body: rotateBody }, preValidation: emptyBodyIsEmptyObject }, async (request) => {
      const changed = await runtime.triggers.rotateSecret(request.params.id, request.body?.secret);
      if (!changed) throw new DroverError('not_found', `no trigger with id "${request.params.id}"`);
      const json = triggerJson(changed.after);
      await recordOperatorAction(runtime, request, { action: 'trigger.rotate-secret', target: `trigger:${changed.after.id}`, before: triggerJson(changed.before), after: json });
      request.log.info({ trigger_id: changed.after.id, secret_id: changed.secret.id, key_id: request.apiKey?.id ?? null }, 'trigger secret added');
      return { ...json, secretId: changed.secret.id, secret: changed.secret.secret };
    });
    app.post<{ Params: { id: string }; Body: { secretId?: string } | undefined }>('/v1/triggers/:id/retire-secret', { config: routeConfig('POST /v1/triggers/:id/retire-secret'), schema: { params: idParam, body: retireBody }, preValidation: emptyBodyIsEmptyObject }, async (request) => {
      const changed = await runtime.triggers.retireSecret(request.params.id, request.body?.secretId);
      if (!changed) throw new DroverError('not_found', `no trigger with id "${request.params.id}"`);
      const json = triggerJson(changed.after);
      await recordOperatorAction(runtime, request, { action: 'trigger.retire-secret', target: `trigger:${changed.after.id}`, before: triggerJson(changed.before), after: json });
      request.log.info({ trigger_id: changed.after.id, secret_id: changed.secret.id, key_id: request.apiKey?.id ?? null }, 'trigger secret retired');
      return { ...json, retiredSecretId: changed.secret.id };
    });
  };
}
