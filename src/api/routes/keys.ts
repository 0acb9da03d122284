/**
 * `/v1/keys` (admin): create, list and revoke API keys over HTTP, as
 * `drover keys` does on the box. A secret appears once, in the create answer;
 * the store keeps only its hash. A revoke takes effect at once on this node
 * and within the key cache's 5 s on the others.
 *
 * A `work` key may carry `handlers`, the patterns of the handlers it may work
 * on (`core/key-scope.ts`); without them it works on `remote: true` handlers
 * only. `handlers` in an answer is null for that default.
 */
import type { FastifyInstance } from 'fastify';
import { DroverError } from '../../core/errors.js';
import { MAX_KEY_HANDLER_PATTERNS } from '../../core/key-scope.js';
import { API_SCOPES, type ApiKeyRow, type ApiScope } from '../../core/types.js';
import { recordOperatorAction } from '../../ops/audit/operator-action.js';
import type { Runtime } from '../../runtime/runtime.js';
import { createApiKey, type KeyVerifier } from '../auth.js';
import { routeConfig } from './scopes.js';

const DAY_MS = 86_400_000;

const createBody = {
  type: 'object',
  required: ['name', 'scopes'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 100 },
    scopes: { type: 'array', minItems: 1, maxItems: API_SCOPES.length, uniqueItems: true, items: { type: 'string', enum: [...API_SCOPES] } },
    handlers: { type: 'array', minItems: 1, maxItems: MAX_KEY_HANDLER_PATTERNS, items: { type: 'string', minLength: 1, maxLength: 200 } },
    expiresAt: { type: 'string', format: 'date-time' },
    expiresInDays: { type: 'number', exclusiveMinimum: 0, maximum: 36_500 },
  },
} as const;

const idParam = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 100 } },
} as const;

export function keyJson(key: ApiKeyRow, now: number) {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    id: key.id,
    name: key.name,
    scopes: key.scopes,
    handlers: key.handlers,
    state: key.revokedAt !== null ? 'revoked' : key.expiresAt !== null && key.expiresAt <= now ? 'expired' : 'active',
    createdAt: iso(key.createdAt),
    expiresAt: iso(key.expiresAt),
    revokedAt: iso(key.revokedAt),
  };
}

/** What the keys routes need from the node (API keys, audited): the runtime satisfies it. */
export type KeyRouteDeps = Pick<Runtime, 'store' | 'clock' | 'audit'>;

export function keyRoutes(runtime: KeyRouteDeps, verifier: KeyVerifier) {
  const { store, clock } = runtime;
  return async function plugin(app: FastifyInstance): Promise<void> {
    app.get('/v1/keys', { config: routeConfig('GET /v1/keys') }, async () => {
      const now = clock();
      return { keys: (await store.listKeys()).map((key) => keyJson(key, now)) };
    });

    app.post<{ Body: { name: string; scopes: ApiScope[]; handlers?: string[]; expiresAt?: string; expiresInDays?: number } }>(
      '/v1/keys',
      { config: routeConfig('POST /v1/keys'), schema: { body: createBody } },
      async (request, reply) => {
        const { name, scopes, handlers, expiresAt, expiresInDays } = request.body;
        const now = clock();
        if (expiresAt !== undefined && expiresInDays !== undefined) throw new DroverError('validation', 'expiresAt and expiresInDays: give one or the other, not both');
        const expires = expiresAt !== undefined ? Date.parse(expiresAt) : expiresInDays !== undefined ? now + Math.round(expiresInDays * DAY_MS) : null;
        if (expires !== null && !(expires > now)) throw new DroverError('validation', 'expiresAt: expected a time in the future');
        const { key, secret } = await createApiKey(store, { name, scopes, handlers: handlers ?? null, now, expiresAt: expires });
        await recordOperatorAction(runtime, request, { action: 'key.create', target: `key:${key.id}`, after: { name, scopes, ...(key.handlers === null ? {} : { handlers: key.handlers }), expiresAt: key.expiresAt } });
        request.log.info({ created_key_id: key.id, scopes, handlers: key.handlers, key_id: request.apiKey?.id ?? null }, 'API key created');
        return reply.code(201).send({ ...keyJson(key, now), secret });
      },
    );

    app.post<{ Params: { id: string } }>('/v1/keys/:id/revoke', { config: routeConfig('POST /v1/keys/:id/revoke'), schema: { params: idParam } }, async (request) => {
      const { id } = request.params;
      const key = (await store.listKeys()).find((k) => k.id === id);
      if (!key) throw new DroverError('not_found', `no API key with id "${id}"; see GET /v1/keys`);
      if (key.revokedAt !== null) throw new DroverError('invalid_state', `API key ${id} is already revoked`, { extensions: { state: 'revoked' } });
      await store.revokeKey(id);
      await recordOperatorAction(runtime, request, { action: 'key.revoke', target: `key:${id}`, before: { revoked: false }, after: { revoked: true } });
      verifier.forget();
      request.log.info({ revoked_key_id: id, key_id: request.apiKey?.id ?? null }, 'API key revoked');
      const now = clock();
      return keyJson({ ...key, revokedAt: (await store.listKeys()).find((k) => k.id === id)?.revokedAt ?? now }, now);
    });
  };
}
