/**
 * `/v1/session`: the web console's sign-in. `POST` exchanges an API key for a
 * session cookie (the key is checked like a bearer key, failed attempts count
 * towards the same per-address limit); `GET` says who the caller is and, for
 * a session, its CSRF token (a page reloaded in the browser gets it back
 * here: it is never kept in browser storage); `DELETE` ends the session on
 * the server and clears the cookie. See `src/api/session.ts`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DroverError } from '../../core/errors.js';
import type { ApiKeyRow } from '../../core/types.js';
import { hashKey, type KeyVerifier } from '../auth.js';
import { sessionCookie, sessionIdFrom, type ConsoleSessions } from '../session.js';
import { routeConfig } from './scopes.js';

const signInBody = {
  type: 'object',
  required: ['key'],
  additionalProperties: false,
  properties: { key: { type: 'string', minLength: 1, maxLength: 200 } },
} as const;

const keyJson = (key: ApiKeyRow) => ({ id: key.id, name: key.name, scopes: key.scopes });

/**
 * @example
 * await app.register(sessionRoutes({ verifier, sessions, secureCookie: config.server.tls !== null }));
 */
export function sessionRoutes(deps: { verifier: KeyVerifier; sessions: ConsoleSessions | undefined; secureCookie: boolean }) {
  const { verifier, sessions } = deps;
  const cookie = (reply: FastifyReply, id: string | null) =>
    reply.header('set-cookie', sessionCookie(id, { secure: deps.secureCookie, maxAgeMs: sessions?.ttlMs ?? 0 }));

  return async function plugin(app: FastifyInstance): Promise<void> {
    app.post<{ Body: { key: string } }>('/v1/session', { config: routeConfig('POST /v1/session'), schema: { body: signInBody } }, async (request, reply) => {
      if (!sessions) throw new DroverError('not_found', 'the console is switched off on this node (console.enabled: false); use the API with a bearer key');
      const key = await verifier.verify(request.body.key, request.ip);
      if (!key) throw new DroverError('unauthorized', 'the API key is unknown, revoked or expired');
      if (!key.scopes.some((scope) => scope !== 'work')) {
        throw new DroverError('forbidden', `the console needs a key with the read, produce, resume or admin scope; this one has ${key.scopes.join(', ')}`);
      }
      // A sign-in over an old cookie replaces that session rather than leaving it behind.
      const previous = sessionIdFrom(request.headers.cookie);
      if (previous) await sessions.end(previous);
      const { id, session } = await sessions.create(hashKey(request.body.key));
      cookie(reply, id).code(201);
      request.log.info({ key_id: key.id }, 'console session started');
      return { key: keyJson(key), csrfToken: session.csrfToken, expiresAt: new Date(session.expiresAt).toISOString() };
    });

    app.get('/v1/session', { config: routeConfig('GET /v1/session') }, async (request: FastifyRequest) => ({
      key: keyJson(request.apiKey!),
      csrfToken: request.session?.csrfToken ?? null,
      expiresAt: request.session ? new Date(request.session.expiresAt).toISOString() : null,
    }));

    app.delete('/v1/session', { config: routeConfig('DELETE /v1/session') }, async (request, reply) => {
      if (request.session && sessions) {
        await sessions.end(request.session.id);
        cookie(reply, null);
        request.log.info({ key_id: request.apiKey?.id ?? null }, 'console session ended');
      }
      return reply.code(204).send();
    });
  };
}
