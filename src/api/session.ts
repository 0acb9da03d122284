/**
 * Console sessions: an API key exchanged for a random session id carried in
 * an HttpOnly, SameSite=Strict cookie (Secure when this node serves TLS), so
 * the browser never holds the key. The id is 256 random bits; only its
 * SHA-256 is stored, beside the hash of the key it stands for (the same hash
 * the key table holds), so the session has exactly the key's scopes and ends
 * when the key is revoked or expires.
 *
 * Where sessions live: one document in the store's metadata (`console_sessions`),
 * written with `updateMeta` (atomic per key on both engines). Several
 * PostgreSQL nodes behind a load balancer therefore share sessions: a sign-in
 * on one node works on every node, and a sign-out on one ends the session on
 * the others within `CACHE_MS` (each node caches the document that long so a
 * console's requests do not each read the store). The document is bounded
 * (`MAX_SESSIONS`, the oldest dropped first) and expired sessions are pruned
 * whenever it is written.
 *
 * CSRF: a state-changing request made with the cookie must carry
 * `x-drover-csrf`, an HMAC of the session id; a page on another origin can
 * neither read it nor send a custom header without a CORS preflight this API
 * never grants. Requests with `Authorization: Bearer` carry no ambient
 * credential and need no token.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { MetaStore } from '../store/engine.js';

export const SESSION_COOKIE = 'drover_session';
export const CSRF_HEADER = 'x-drover-csrf';
const META_KEY = 'console_sessions';
const CACHE_MS = 2_000;
/** Sessions kept at once; signing in past this ends the oldest. */
export const MAX_SESSIONS = 1_000;

interface StoredSession {
  /** SHA-256 of the API key's secret (what the key table is keyed by). */
  keyHash: string;
  createdAt: number;
  expiresAt: number;
}

type SessionDoc = Record<string, StoredSession>;

export interface Session extends StoredSession {
  /** The token state-changing requests send in `x-drover-csrf`. */
  csrfToken: string;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** The CSRF token of a session: derived from the id (never stored), so the store's copy cannot produce it. */
export function csrfTokenFor(sessionId: string): string {
  return createHmac('sha256', sessionId).update('drover-console-csrf').digest('base64url');
}

/** Constant-time comparison of a sent CSRF token with the session's. */
export function csrfMatches(sessionId: string, sent: unknown): boolean {
  if (typeof sent !== 'string') return false;
  const want = Buffer.from(csrfTokenFor(sessionId));
  const got = Buffer.from(sent);
  return want.length === got.length && timingSafeEqual(want, got);
}

/**
 * Console sessions in the store's metadata, cached per node for `CACHE_MS`.
 *
 * @example
 * const sessions = new ConsoleSessions(store, Date.now, 12 * 3_600_000);
 * const { id, session } = await sessions.create(hashKey(secret)); // id goes in the cookie
 * (await sessions.find(id))?.keyHash === hashKey(secret); // true
 * await sessions.end(id);
 */
export class ConsoleSessions {
  #cache: { doc: SessionDoc; until: number } | null = null;

  constructor(
    private readonly meta: Pick<MetaStore, 'getMeta' | 'updateMeta'>,
    private readonly clock: () => number,
    readonly ttlMs: number,
  ) {}

  /** Start a session for the key whose secret hashes to `keyHash`; returns the id to put in the cookie. */
  async create(keyHash: string): Promise<{ id: string; session: Session }> {
    const id = randomBytes(32).toString('base64url');
    const now = this.clock();
    const stored: StoredSession = { keyHash, createdAt: now, expiresAt: now + this.ttlMs };
    await this.#update((doc) => {
      const live = Object.entries(doc).filter(([, s]) => s.expiresAt > now);
      live.sort((a, b) => a[1].createdAt - b[1].createdAt);
      const kept = live.slice(Math.max(0, live.length - (MAX_SESSIONS - 1)));
      return { ...Object.fromEntries(kept), [sha256(id)]: stored };
    });
    return { id, session: { ...stored, csrfToken: csrfTokenFor(id) } };
  }

  /** The live session with this id, or null (unknown, ended or expired). */
  async find(id: string): Promise<Session | null> {
    const now = this.clock();
    if (!this.#cache || this.#cache.until <= now) {
      const raw = await this.meta.getMeta(META_KEY);
      this.#cache = { doc: parse(raw), until: now + CACHE_MS };
    }
    const stored = this.#cache.doc[sha256(id)];
    if (!stored || stored.expiresAt <= now) return null;
    return { ...stored, csrfToken: csrfTokenFor(id) };
  }

  /** End a session (sign-out); true when it existed. */
  async end(id: string): Promise<boolean> {
    const hash = sha256(id);
    let existed = false;
    await this.#update((doc) => {
      existed = hash in doc;
      const { [hash]: _ended, ...rest } = doc;
      return rest;
    });
    return existed;
  }

  async #update(change: (doc: SessionDoc) => SessionDoc): Promise<void> {
    const now = this.clock();
    const written = await this.meta.updateMeta(META_KEY, (current) => {
      const pruned = Object.fromEntries(Object.entries(parse(current)).filter(([, s]) => s.expiresAt > now));
      return JSON.stringify(change(pruned));
    });
    this.#cache = { doc: parse(written), until: now + CACHE_MS };
  }
}

function parse(raw: string | null): SessionDoc {
  if (!raw) return {};
  try {
    const doc = JSON.parse(raw) as unknown;
    return doc && typeof doc === 'object' && !Array.isArray(doc) ? (doc as SessionDoc) : {};
  } catch {
    return {}; // a damaged document ends every session rather than the node
  }
}

/**
 * The session id in a Cookie header, if any.
 *
 * @example
 * sessionIdFrom('theme=dark; drover_session=AbC…43 chars'); // 'AbC…'
 */
export function sessionIdFrom(cookieHeader: string | undefined): string | null {
  if (!cookieHeader) return null;
  for (const part of cookieHeader.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === SESSION_COOKIE) {
      const value = part.slice(eq + 1).trim();
      return /^[A-Za-z0-9_-]{20,100}$/.test(value) ? value : null;
    }
  }
  return null;
}

/**
 * The Set-Cookie value for a session (or, with `id` null, one that clears it).
 *
 * @example
 * sessionCookie(id, { secure: true, maxAgeMs: 3_600_000 }); // 'drover_session=…; Path=/; HttpOnly; SameSite=Strict; Max-Age=3600; Secure'
 */
export function sessionCookie(id: string | null, options: { secure: boolean; maxAgeMs: number }): string {
  const parts = [`${SESSION_COOKIE}=${id ?? ''}`, 'Path=/', 'HttpOnly', 'SameSite=Strict', `Max-Age=${id ? Math.floor(options.maxAgeMs / 1000) : 0}`];
  if (options.secure) parts.push('Secure');
  return parts.join('; ');
}
