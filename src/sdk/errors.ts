/**
 * Typed SDK errors. Every non-2xx answer becomes a `DroverApiError` carrying
 * the problem+json `type` (e.g. `queue-full`), so callers branch on a stable
 * name instead of parsing messages.
 */

export const PROBLEM_BASE = 'https://drover.dev/problems/';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  request_id?: string;
  [extension: string]: unknown;
}

/**
 * The API answered with an error.
 * @example
 * try { await client.enqueue({ handler: 'nope' }) }
 * catch (error) { if (error instanceof DroverApiError && error.code === 'unknown-handler') … }
 */
export class DroverApiError extends Error {
  /** The problem type's short name: `validation`, `queue-full`, `stale-lease`, … */
  readonly code: string;
  readonly type: string;
  readonly status: number;
  readonly title: string;
  readonly detail: string;
  readonly requestId: string | null;
  /** Milliseconds the server asked us to wait (Retry-After), if it did. */
  readonly retryAfterMs: number | null;
  readonly problem: Problem;

  constructor(problem: Problem, retryAfterMs: number | null) {
    super(`${problem.status} ${problem.title}: ${problem.detail}`);
    this.name = 'DroverApiError';
    this.problem = problem;
    this.type = problem.type;
    this.code = problem.type.startsWith(PROBLEM_BASE) ? problem.type.slice(PROBLEM_BASE.length) : problem.type;
    this.status = problem.status;
    this.title = problem.title;
    this.detail = problem.detail;
    this.requestId = typeof problem.request_id === 'string' ? problem.request_id : null;
    this.retryAfterMs = retryAfterMs;
  }
}

/** The server could not be reached (connection refused, reset, DNS) or did not answer in time. */
export class DroverNetworkError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DroverNetworkError';
  }
}

/** `waitForJob` (or another wait) ran out of time. */
export class DroverTimeoutError extends Error {
  constructor(
    message: string,
    /** The last state seen, when known. */
    readonly lastState: string | null = null,
  ) {
    super(message);
    this.name = 'DroverTimeoutError';
  }
}

/** Is `error` a `DroverApiError` of this type (`'queue-full'`, or the full type URI)? */
export function isProblem(error: unknown, code: string): error is DroverApiError {
  return error instanceof DroverApiError && (error.code === code || error.type === code);
}
