/**
 * The SDK's transport: JSON over `fetch`, problem+json turned into
 * `DroverApiError`, and retries. A 429 or 503 means the server refused the
 * request and wrote nothing, so it is always safe to send again: we wait what
 * `Retry-After` says (or back off exponentially with jitter) and retry. A
 * network failure is retried only for requests marked idempotent, because the
 * first attempt may have been committed before the connection broke.
 */
import { DroverApiError, DroverNetworkError, type Problem } from './errors.js';

export interface TransportOptions {
  url: string;
  key: string;
  /** Retries after a 429/503 (or a network error, for idempotent requests). Default 3. */
  retries?: number;
  /** Longest single wait between retries. Default 30 s. */
  maxRetryDelayMs?: number;
  /** Per-attempt timeout. Default 30 s. */
  timeoutMs?: number;
  /** Extra headers on every request (e.g. a tracing header). */
  headers?: Record<string, string>;
  /** A `fetch` to use instead of the global one (tests, proxies). */
  fetch?: typeof fetch;
}

export interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | number | undefined>;
  signal?: AbortSignal;
  /** Safe to resend after a network error (the server deduplicates or it is a read). */
  idempotent?: boolean;
  /** Override the transport's retry count for this request. */
  retries?: number;
  /** Override the per-attempt timeout (a long-poll needs longer than its wait). */
  timeoutMs?: number;
  headers?: Record<string, string>;
}

const RETRY_STATUSES = new Set([429, 503]);

export class Transport {
  readonly base: string;
  readonly #options: TransportOptions;
  readonly #fetch: typeof fetch;

  constructor(options: TransportOptions) {
    if (!/^https?:\/\//.test(options.url)) throw new TypeError(`url: expected http:// or https://, got ${JSON.stringify(options.url)}`);
    this.base = options.url.replace(/\/+$/, '');
    this.#options = options;
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  get key(): string {
    return this.#options.key;
  }

  /** Send a request; resolves with the parsed JSON body of a 2xx answer. */
  async request<T>(method: 'GET' | 'POST', path: string, options: RequestOptions = {}): Promise<T> {
    const retries = options.retries ?? this.#options.retries ?? 3;
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await this.send(method, path, options);
      } catch (error) {
        if (options.signal?.aborted) throw options.signal.reason ?? error;
        if (!options.idempotent || attempt >= retries) throw error;
        await sleep(this.#backoff(attempt), options.signal);
        continue;
      }
      if (response.ok) return (response.status === 204 ? undefined : await response.json()) as T;
      const error = await toApiError(response);
      if (!RETRY_STATUSES.has(response.status) || attempt >= retries) throw error;
      await sleep(Math.min(error.retryAfterMs ?? this.#backoff(attempt), this.#maxDelay()), options.signal);
    }
  }

  /** One attempt, raw `Response` (streams use this). Network failures become `DroverNetworkError`. */
  async send(method: 'GET' | 'POST', path: string, options: RequestOptions = {}, accept = 'application/json'): Promise<Response> {
    const timeoutMs = options.timeoutMs ?? this.#options.timeoutMs ?? 30_000;
    const signal = anySignal(options.signal, timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined);
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    try {
      return await this.#fetch(this.base + path + queryString(options.query), {
        method,
        headers: {
          accept,
          authorization: `Bearer ${this.#options.key}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...this.#options.headers,
          ...options.headers,
        },
        ...(body === undefined ? {} : { body }),
        ...(signal ? { signal } : {}),
      });
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason ?? error;
      const reason = error instanceof Error && error.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : describe(error);
      throw new DroverNetworkError(`${method} ${path}: ${reason}`, { cause: error });
    }
  }

  #backoff(attempt: number): number {
    // Full jitter: callers that failed together do not come back together.
    return Math.random() * Math.min(this.#maxDelay(), 250 * 2 ** attempt);
  }

  #maxDelay(): number {
    return this.#options.maxRetryDelayMs ?? 30_000;
  }
}

/** Turn a non-2xx answer into a `DroverApiError` (a non-problem body still gets a problem shape). */
export async function toApiError(response: Response): Promise<DroverApiError> {
  const text = await response.text().catch(() => '');
  let problem: Problem | null = null;
  try {
    const parsed = JSON.parse(text) as Partial<Problem>;
    if (parsed && typeof parsed.type === 'string') problem = parsed as Problem;
  } catch {
    // not JSON: a proxy's error page, say
  }
  problem ??= {
    type: 'about:blank',
    title: response.statusText || `HTTP ${response.status}`,
    status: response.status,
    detail: text.slice(0, 500) || `HTTP ${response.status} without a problem body`,
  };
  return new DroverApiError(problem, parseRetryAfter(response.headers.get('retry-after')));
}

/**
 * `Retry-After` as milliseconds: delta-seconds or an HTTP date; null when absent or unreadable.
 * @example
 * parseRetryAfter('2'); // 2000
 */
export function parseRetryAfter(value: string | null, now = Date.now()): number | null {
  if (value === null || value.trim() === '') return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

export function queryString(query: Record<string, string | number | undefined> | undefined): string {
  if (!query) return '';
  const pairs = Object.entries(query).filter((entry): entry is [string, string | number] => entry[1] !== undefined);
  return pairs.length === 0 ? '' : `?${pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`).join('&')}`;
}

/** Resolve after `ms`, or reject with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A signal that aborts when any of the given ones does. */
export function anySignal(...signals: Array<AbortSignal | undefined>): AbortSignal | undefined {
  const present = signals.filter((s): s is AbortSignal => s !== undefined);
  if (present.length <= 1) return present[0];
  const controller = new AbortController();
  for (const signal of present) {
    if (signal.aborted) {
      controller.abort(signal.reason);
      break;
    }
    signal.addEventListener('abort', () => controller.abort(signal.reason), { once: true, signal: controller.signal });
  }
  return controller.signal;
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  return cause instanceof Error ? `${error.message} (${cause.message})` : error.message;
}
