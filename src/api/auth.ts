/**
 * API keys: 256-bit random secrets shown once, stored as SHA-256 hashes, each
 * with scopes. Every route declares the scope it needs in its `config.scope`;
 * `admin` satisfies any scope. Lookups are cached briefly so a hot intake path
 * does not read the store per request; a revoked key stops working within the
 * cache TTL (5 s).
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { DroverError } from '../core/errors.js';
import { validateHandlerPatterns } from '../core/key-scope.js';
import type { ApiKeyRow, ApiScope } from '../core/types.js';
import type { StorageEngine } from '../store/engine.js';

export const KEY_PREFIX = 'drv_';
const CACHE_TTL_MS = 5_000;

/** The scope a route needs; `public` routes skip authentication. */
export type RouteScope = ApiScope | 'public';

declare module 'fastify' {
  interface FastifyContextConfig {
    scope?: RouteScope | RouteScope[];
  }
  interface FastifyRequest {
    apiKey: ApiKeyRow | null;
  }
}

export function hashKey(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function generateKeySecret(): string {
  return KEY_PREFIX + randomBytes(32).toString('base64url');
}

/** Create and store a key; returns the row and the secret (shown once, never stored). */
export async function createApiKey(
  store: StorageEngine,
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
    id: `key_${randomUUID().replace(/-/g, '').slice(0, 16)}`,
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

export class KeyVerifier {
  readonly #cache = new Map<string, { key: ApiKeyRow | null; until: number }>();

  constructor(
    private readonly store: StorageEngine,
    private readonly clock: () => number,
  ) {}

  async verify(secret: string): Promise<ApiKeyRow | null> {
    const hash = hashKey(secret);
    const now = this.clock();
    const cached = this.#cache.get(hash);
    let key: ApiKeyRow | null;
    if (cached && cached.until > now) {
      key = cached.key;
    } else {
      key = await this.store.findKeyByHash(hash);
      if (this.#cache.size > 10_000) this.#cache.clear(); // bound memory against key-guessing floods
      this.#cache.set(hash, { key, until: now + CACHE_TTL_MS });
    }
    if (!key || key.revokedAt !== null || (key.expiresAt !== null && key.expiresAt <= now)) return null;
    return key;
  }

  /** Drop every cached lookup (after a revoke through this node, so it takes effect at once). */
  forget(): void {
    this.#cache.clear();
  }
}

function allows(key: ApiKeyRow, needed: RouteScope[]): boolean {
  return key.scopes.includes('admin') || needed.some((scope) => scope !== 'public' && key.scopes.includes(scope));
}

/** Register the authentication hook; routes without `config.scope` are public. */
export function registerAuth(app: FastifyInstance, verifier: KeyVerifier): void {
  app.decorateRequest('apiKey', null);
  app.addHook('onRequest', async (request: FastifyRequest) => {
    const declared = request.routeOptions.config?.scope;
    if (declared === undefined) return;
    const needed = Array.isArray(declared) ? declared : [declared];
    if (needed.includes('public')) return;
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match?.[1]) {
      throw new DroverError('unauthorized', 'send an API key as "Authorization: Bearer <key>" (create one with `drover keys create`)');
    }
    const key = await verifier.verify(match[1]);
    if (!key) throw new DroverError('unauthorized', 'the API key is unknown, revoked or expired');
    if (!allows(key, needed)) {
      throw new DroverError('forbidden', `this route needs scope ${needed.join(' or ')}; the key has ${key.scopes.join(', ')}`, {
        extensions: { required: needed, granted: key.scopes },
      });
    }
    request.apiKey = key;
  });
}
