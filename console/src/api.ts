/**
 * The console's only way to the node: the public /v1 API, same origin, with
 * the session cookie. The CSRF token lives in this module's memory only (a
 * reload asks `GET /v1/session` for it again); no key or token is ever put in
 * browser storage.
 */
export type Scope = 'admin' | 'produce' | 'work' | 'read' | 'resume';

export interface Me {
  key: { id: string; name: string; scopes: Scope[] };
  csrfToken: string | null;
  expiresAt: string | null;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

let csrfToken: string | null = null;
const signedOutListeners = new Set<() => void>();

/** Called when the server says the session is gone (401): the app shows the sign-in form. */
export function onSignedOut(listener: () => void): () => void {
  signedOutListeners.add(listener);
  return () => signedOutListeners.delete(listener);
}

export async function api<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['x-drover-csrf'] = csrfToken;
  const response = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  const json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  if (!response.ok) {
    const type = String(json.type ?? '').replace('https://drover.dev/problems/', '');
    if (response.status === 401 && path !== '/v1/session') for (const listener of signedOutListeners) listener();
    throw new ApiError(response.status, type, String(json.detail ?? json.title ?? response.statusText));
  }
  return json as T;
}

export async function currentSession(): Promise<Me | null> {
  try {
    const me = await api<Me>('GET', '/v1/session');
    csrfToken = me.csrfToken;
    return me;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return null;
    throw error;
  }
}

export async function signIn(key: string): Promise<Me> {
  const me = await api<Me>('POST', '/v1/session', { key });
  csrfToken = me.csrfToken;
  return me;
}

export async function signOut(): Promise<void> {
  try {
    await api('DELETE', '/v1/session');
  } finally {
    csrfToken = null;
  }
}

export const isAdmin = (me: Me) => me.key.scopes.includes('admin');

// ---------------------------------------------------------------- wire shapes

export type JobState = 'scheduled' | 'queued' | 'running' | 'succeeded' | 'dead' | 'cancelled' | 'suspended';
export const JOB_STATES: JobState[] = ['scheduled', 'queued', 'running', 'suspended', 'succeeded', 'dead', 'cancelled'];

export interface Job {
  id: string;
  handler: string;
  queue: string;
  state: JobState;
  payload: unknown;
  eventId: string | null;
  priority: number;
  runAt: string | null;
  attemptCount: number;
  maxAttempts: number;
  workerId: string | null;
  lastError: string | null;
  deadReason: string | null;
  result: unknown;
  createdAt: string;
  updatedAt: string | null;
  finishedAt: string | null;
}

export interface Attempt {
  attempt: number;
  workerId: string | null;
  startedAt: string | null;
  endedAt: string | null;
  outcome: string | null;
  error: string | null;
}

export interface Handler {
  name: string;
  queue: string;
  remote: boolean;
  paused: boolean;
  triggers: string[];
  cron: string | null;
  concurrency: number;
  maxAttempts: number;
  timeoutMs: number;
  running: number;
  isolation: string;
  quarantined: boolean;
  quarantinedAt: string | null;
  recentFailures: number;
  breaker: { state: 'closed' | 'open' | 'half_open' | string; consecutiveFailures: number; openedAt: string | null; probeAt: string | null };
}

export interface Queue {
  name: string;
  maxDepth: number | null;
  paused: boolean;
  counts: Record<string, number>;
  oldestQueuedAgeSeconds: number;
  /** Lease order (docs/configuration.md "Flow control"); `priorityMs` "strict" when waiting never overtakes priority. */
  weights: { priority: number; age: number };
  ageUnitMs: number;
  priorityMs: number | 'strict';
  fairness: 'none' | 'tenant';
  /** How long the full queue has refused intake (this node); 0 while it accepts. */
  backpressureSeconds?: number;
}

/** One `job` message of `GET /v1/stream`. */
export interface JobMessage {
  id: string;
  handler: string;
  queue: string;
  state: JobState;
  attempt: number;
  outcome?: string;
  error?: string;
  durationMs?: number;
  at: string;
}
