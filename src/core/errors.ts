/**
 * The one registry of coded errors. Each code has a stable problem+json `type`
 * (a URI users may match on), a title and an HTTP status. Throw `DroverError`
 * with a code; the API turns it into `application/problem+json`.
 */

export const PROBLEM_BASE = 'https://drover.dev/problems/';

export const ERROR_CODES = {
  validation: { status: 422, title: 'Request body or parameters are invalid' },
  malformed_json: { status: 400, title: 'Request body is not valid JSON' },
  malformed_url: { status: 400, title: 'Request URL is malformed' },
  unsupported_media_type: { status: 415, title: 'Content-Type must be application/json' },
  payload_too_large: { status: 413, title: 'Request body is too large' },
  json_too_complex: { status: 422, title: 'Request JSON is nested too deeply or has too many members' },
  malformed_request: { status: 400, title: 'The HTTP request is malformed' },
  request_timeout: { status: 408, title: 'The request did not arrive in time' },
  headers_too_large: { status: 431, title: 'Request headers are too large' },
  auth_rate_limited: { status: 429, title: 'Too many failed authentications from this address' },
  unauthorized: { status: 401, title: 'Missing or invalid API key' },
  forbidden: { status: 403, title: 'API key lacks the required scope' },
  csrf_failed: { status: 403, title: 'The console session\'s CSRF token is missing or wrong' },
  handler_not_allowed: { status: 403, title: 'The API key may not work on this handler' },
  lease_key_mismatch: { status: 403, title: 'The lease was taken with another API key' },
  not_found: { status: 404, title: 'Resource not found' },
  out_of_range: { status: 400, title: 'An index in the request is out of range' },
  snapshot_not_ready: { status: 503, title: 'The snapshot is still being taken' },
  too_many_snapshots: { status: 409, title: 'This node keeps as many snapshots as it may' },
  route_not_found: { status: 404, title: 'No such route' },
  method_not_allowed: { status: 405, title: 'Method not allowed' },
  forbidden_target: { status: 422, title: 'The webhook target is a loopback, private, link-local or metadata address' },
  unknown_handler: { status: 422, title: 'No handler with that name is registered' },
  invalid_state: { status: 409, title: 'The resource is not in a state that allows this' },
  stale_lease: { status: 409, title: 'The lease token is no longer valid' },
  duplicate_step: { status: 409, title: 'The job already has a step with this name' },
  step_result_too_large: { status: 422, title: 'The step result is larger than the node allows' },
  too_many_steps: { status: 422, title: 'The job has as many steps as the node allows' },
  job_state_too_large: { status: 422, title: 'The job\'s stored step results would pass the node\'s limit' },
  /** A second resume, or one after the interrupt's timeout or its job's cancel: nothing ran twice. */
  interrupt_not_pending: { status: 409, title: 'The interrupt is no longer pending' },
  queue_full: { status: 429, title: 'Queue is at its maximum depth' },
  rate_limited: { status: 429, title: 'Too many requests' },
  shutting_down: { status: 503, title: 'The node is shutting down' },
  feature_disabled: { status: 503, title: 'A feature gate turns this off' },
  store_unavailable: { status: 503, title: 'The store is unavailable' },
  /** 507 Insufficient Storage: temporary; nothing accepted is lost, retry after `Retry-After`. */
  store_full: { status: 507, title: 'The store is out of disk space' },
  schema_too_new: { status: 500, title: 'The store schema is newer than this binary' },
  config_invalid: { status: 500, title: 'Configuration is invalid' },
  internal: { status: 500, title: 'Internal error' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface DroverErrorOptions {
  cause?: unknown;
  /** Extra problem+json members (e.g. `errors` for validation, `queue`). */
  extensions?: Record<string, unknown>;
  /** Seconds a client should wait before retrying (429/503/507). */
  retryAfterSeconds?: number;
}

/**
 * @example
 * throw new DroverError('unknown_handler', `no handler named "${name}"; registered: ${names}`);
 */
export class DroverError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly extensions: Record<string, unknown>;
  readonly retryAfterSeconds: number | undefined;

  constructor(code: ErrorCode, message: string, options: DroverErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DroverError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.extensions = options.extensions ?? {};
    this.retryAfterSeconds = options.retryAfterSeconds;
  }

  get type(): string {
    return PROBLEM_BASE + this.code.replace(/_/g, '-');
  }
}

/** A queue refused work because it is at its maximum depth. */
export class QueueFullError extends DroverError {
  constructor(queue: string, maxDepth: number) {
    super('queue_full', `queue "${queue}" holds its maximum of ${maxDepth} unfinished jobs; retry later`, {
      extensions: { queue, maxDepth },
      retryAfterSeconds: 1,
    });
  }
}

/** The store was written by a newer Drover; refuse to run rather than corrupt it. */
export class SchemaTooNewError extends DroverError {
  constructor(found: number, known: number) {
    super(
      'schema_too_new',
      `the store is at schema version ${found} but this drover knows only up to ${known}; ` +
        'upgrade drover (or restore a backup taken before the upgrade)',
      { extensions: { found, known } },
    );
  }
}

/** Coerce anything caught into an Error (a thrown string or object must not crash a catch). */
export function toError(value: unknown): Error {
  if (value instanceof Error) return value;
  if (typeof value === 'string') return new Error(value);
  try {
    return new Error(JSON.stringify(value));
  } catch {
    return new Error(String(value));
  }
}

/** A handler throws this to fail the job at once, without retries. */
export class NonRetryableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NonRetryableError';
  }
}
