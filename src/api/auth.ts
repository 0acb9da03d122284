/**
 * API keys: 256-bit random secrets shown once, stored as SHA-256 hashes, each
 * with scopes. Every route declares the scope it needs in its `config.scope`;
 * `admin` satisfies any scope. Lookups are cached briefly so a hot intake path
 * does not read the store per request; a revoked key stops working within the
 * cache TTL (5 s).
 *
 * Guessing keys is bounded twice over: unknown keys are cached in their own
 * LRU, so a flood of random keys cannot push valid keys out of theirs; and a
 * client address that fails `auth.maxFailures` times in `auth.failureWindowMs`
 * gets 429 `auth-rate-limited` without a store lookup until the window ends.
 * A key this node has verified before (still in its LRU, even if the entry's
 * 5 s lifetime is over) still passes from such an address, so clients sharing
 * an address (NAT, a proxy) with a guesser keep working; only keys the node
 * has not seen lately are refused there.
 */
import * as crypto from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { DroverError } from '../core/errors.js';
import { validateHandlerPatterns } from '../core/key-scope.js';
import type { ApiKeyRow, ApiScope } from '../core/types.js';
import type { KeyStore } from '../store/engine.js';
import { Lru } from './lru.js';
import { CSRF_HEADER, csrfMatches, sessionIdFrom, type ConsoleSessions } from './session.js';

export const KEY_PREFIX = 'drv_';
const CACHE_TTL_MS = 5_000;
/** Entries in each of the known-key and unknown-key caches, and client addresses tracked for failures. */
const CACHE_ENTRIES = 10_000;

/** The scope a route needs; `public` routes skip authentication. */
export type RouteScope = ApiScope | 'public';

declare module 'fastify' {
  interface FastifyContextConfig {
    scope?: RouteScope | RouteScope[];
  }
  interface FastifyRequest {
    apiKey: ApiKeyRow | null;
    /** The console session the request authenticated with (null: a bearer key, or none). */
    session: { id: string; expiresAt: number; csrfToken: string } | null;
  }
}

/**
 * One-shot `crypto.hash` (Node >= 20.12) where there is one: every request
 * hashes its key before the cache lookup, and a `Hash` object costs several
 * times the digest itself. Same hex SHA-256 either way.
 */
const oneShotHash = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash;

export function hashKey(secret: string): string {
  return oneShotHash ? oneShotHash('sha256', secret, 'hex') : crypto.createHash('sha256').update(secret).digest('hex');
}

export function generateKeySecret(): string {
  return KEY_PREFIX + crypto.randomBytes(32).toString('base64url');
}

/** Create and store a key; returns the row and the secret (shown once, never stored). */
export async function createApiKey(
  store: Pick<KeyStore, 'createKey'>,
  options: { name: string; scopes: ApiScope[]; handlers?: readonly string[] | null; secret?: string; expiresAt?: number | null; now: number },
): Promise<{ key: ApiKeyRow; secret: string }> {
  const secret = options.secret ?? generateKeySecret();
  if (secret.length < 16) throw new DroverError('validation', 'an API key must be at least 16 characters long');
  const handlers = options.handlers === undefined || options.handlers === null ? null : validateHandlerPatterns(options.handlers);
  if (handlers !== null && (!options.scopes.includes('work') || options.scopes.includes('admin'))) {
    throw new DroverError('validation', options.scopes.includes('admin')
      ? 'handlers: an admin key works on every handler, so handler patterns would not limit it; create a separate work key with them'
      : 'handlers: only a key with the work scope works on handlers; add "work" to its scopes or leave handlers out');
  }
  const key: ApiKeyRow = {
    id: `key_${crypto.randomUUID().replace(/-/g, '').slice(0, 16)}`,
    name: options.name,
    hash: hashKey(secret),
    scopes: options.scopes,
    handlers,
    createdAt: options.now,
    expiresAt: options.expiresAt ?? null,
    revokedAt: null,
  };
  await store.createKey(key);
  return { key, secret };
}

export interface AuthFailureLimit {
  maxFailures: number;
  windowMs: number;
}

export class KeyVerifier {
  readonly #known = new Lru<string, { key: ApiKeyRow; until: number }>(CACHE_ENTRIES);
  readonly #unknown = new Lru<string, number>(CACHE_ENTRIES);
  readonly #failures = new Lru<string, { count: number; windowEnds: number }>(CACHE_ENTRIES);

  constructor(
    private readonly store: Pick<KeyStore, 'findKeyByHash'>,
    private readonly clock: () => number,
    private readonly limit: AuthFailureLimit = { maxFailures: 20, windowMs: 60_000 },
  ) {}

  /**
   * The key for `secret`, or null when it is unknown, revoked or expired. With
   * `client` (the caller's address), failures are counted per address and an
   * address over the limit gets a `auth_rate_limited` error instead of a lookup.
   */
  async verify(secret: string, client?: string): Promise<ApiKeyRow | null> {
    return this.verifyHash(hashKey(secret), client);
  }

  /**
   * `verifyHash` when the cache can answer it without the store (a key this
   * node verified within the cache TTL): the key, or null when it is revoked
   * or expired; undefined when only `verifyHash` can tell. The hot intake
   * path then authenticates without a promise.
   */
  cachedHash(hash: string, client?: string): ApiKeyRow | null | undefined {
    const now = this.clock();
    const known = this.#known.get(hash);
    return known && known.until > now ? this.#usable(known.key, now, client) : undefined;
  }

  /** `verify` by the key's hash (a console session holds the hash, never the secret). */
  async verifyHash(hash: string, client?: string): Promise<ApiKeyRow | null> {
    const now = this.clock();
    let key: ApiKeyRow | null;
    const known = this.#known.get(hash);
    if (known && known.until > now) {
      key = known.key;
    } else {
      // A hash this node has verified before (its cache entry merely expired) is no guess: look it up even
      // for an address over the limit, so clients sharing a NAT or a proxy with a guesser keep working.
      if (client !== undefined && !known) this.#refuseIfOverLimit(client, now);
      const unknownUntil = this.#unknown.get(hash);
      if (unknownUntil !== undefined && unknownUntil > now) {
        key = null;
      } else {
        key = await this.store.findKeyByHash(hash);
        if (key) {
          this.#known.set(hash, { key, until: now + CACHE_TTL_MS });
          this.#unknown.delete(hash);
        } else {
          this.#unknown.set(hash, now + CACHE_TTL_MS);
          this.#known.delete(hash);
        }
      }
    }
    return this.#usable(key, now, client);
  }

  /** `key` unless it is missing, revoked or expired at `now` (a failure counted for `client`). */
  #usable(key: ApiKeyRow | null, now: number, client: string | undefined): ApiKeyRow | null {
    if (!key || key.revokedAt !== null || (key.expiresAt !== null && key.expiresAt <= now)) {
      if (client !== undefined) this.#recordFailure(client, now);
      return null;
    }
    return key;
  }

  /** Drop every cached lookup (after a revoke through this node, so it takes effect at once). */
  forget(): void {
    this.#known.clear();
    this.#unknown.clear();
  }

  #refuseIfOverLimit(client: string, now: number): void {
    const entry = this.#failures.get(client);
    if (!entry || entry.windowEnds <= now || entry.count < this.limit.maxFailures) return;
    const retryAfterSeconds = Math.max(1, Math.ceil((entry.windowEnds - now) / 1000));
    throw new DroverError('auth_rate_limited', `${entry.count} failed authentications from this address; retry in ${retryAfterSeconds} s with a valid key`, {
      retryAfterSeconds,
    });
  }

  #recordFailure(client: string, now: number): void {
    const entry = this.#failures.get(client);
    if (!entry || entry.windowEnds <= now) this.#failures.set(client, { count: 1, windowEnds: now + this.limit.windowMs });
    else entry.count++;
  }
}

/** The secret of an `Authorization: Bearer <key>` header; throws `unauthorized` for anything else. */
function bearerSecret(header: string | undefined): string {
  const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  if (!match?.[1]) {
    throw new DroverError('unauthorized', 'send an API key as "Authorization: Bearer <key>" (create one with `drover keys create`)');
  }
  return match[1];
}

function knownKey(key: ApiKeyRow | null): ApiKeyRow {
  if (!key) throw new DroverError('unauthorized', 'the API key is unknown, revoked or expired');
  return key;
}

async function keyOfSession(request: FastifyRequest, verifier: KeyVerifier, sessions: ConsoleSessions, id: string): Promise<ApiKeyRow> {
  const session = await sessions.find(id);
  if (!session) throw new DroverError('unauthorized', 'the console session has ended or expired; sign in again');
  const key = await verifier.verifyHash(session.keyHash, request.ip);
  if (!key) throw new DroverError('unauthorized', 'the API key behind this console session is revoked or expired; sign in with another key');
  if (request.method !== 'GET' && request.method !== 'HEAD' && !csrfMatches(id, request.headers[CSRF_HEADER])) {
    throw new DroverError('csrf_failed', `a request made with the console session cookie must send its CSRF token in the ${CSRF_HEADER} header`);
  }
  request.session = { id, expiresAt: session.expiresAt, csrfToken: session.csrfToken };
  return key;
}

function allows(key: ApiKeyRow, needed: RouteScope[]): boolean {
  return key.scopes.includes('admin') || needed.some((scope) => scope !== 'public' && key.scopes.includes(scope));
}

/**
 * Register the authentication hook; routes without `config.scope` are public.
 * With `sessions`, a request without an Authorization header may authenticate
 * with a console session cookie instead (see session.ts), and then needs the
 * session's CSRF token on anything but GET and HEAD.
 */
export function registerAuth(app: FastifyInstance, verifier: KeyVerifier, sessions?: ConsoleSessions): void {
  app.decorateRequest('apiKey', null);
  app.decorateRequest('session', null);
  const authorize = (request: FastifyRequest, key: ApiKeyRow, needed: RouteScope[]): void => {
    if (!allows(key, needed)) {
      throw new DroverError('forbidden', `this route needs scope ${needed.join(' or ')}; the key has ${key.scopes.join(', ')}`, {
        extensions: { required: needed, granted: key.scopes },
      });
    }
    request.apiKey = key;
  };
  // A callback hook: a bearer key the cache knows (every request of a busy client) is checked without a
  // promise; a cache miss or a console session waits for the store. A throw here reaches the error
  // handler as an async hook's rejection would.
  app.addHook('onRequest', (request: FastifyRequest, _reply, done) => {
    const declared = request.routeOptions.config?.scope;
    if (declared === undefined) return done();
    const needed = Array.isArray(declared) ? declared : [declared];
    if (needed.includes('public')) return done();
    const header = request.headers.authorization;
    const sessionId = header === undefined && sessions ? sessionIdFrom(request.headers.cookie) : null;
    const finish = (key: ApiKeyRow | null) => {
      try {
        authorize(request, knownKey(key), needed);
      } catch (error) {
        return done(error as Error);
      }
      done();
    };
    if (sessionId !== null) return void keyOfSession(request, verifier, sessions!, sessionId).then(finish, done);
    const hash = hashKey(bearerSecret(header));
    const cached = verifier.cachedHash(hash, request.ip);
    if (cached !== undefined) return finish(cached);
    verifier.verifyHash(hash, request.ip).then(finish, done);
  });
}
