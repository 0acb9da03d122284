/**
 * The `http` action: call a REST API with the event (method, URL, headers,
 * a body template, the statuses that mean success). The webhook action is
 * its signed special case and sends through `callHttp` too.
 */
import { DroverError } from '../../core/errors.js';
import { actionCredentials, redactHeaders, redactUrl, redactValues } from '../../core/redact.js';
import { compileJsonTemplate, compileTemplate, jsonStringEscape, renderJsonTemplate, renderTemplate } from '../../core/template.js';
import { ActionFailure, checkTimeout, checkUrl, statusFailure, templateScope, TEMPLATE_ROOTS, timeoutOf, type ActionKind, type Delivery, type StoredActionBase } from './action.js';
import { sendRequest } from './net.js';

export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

export interface HttpAction extends StoredActionBase {
  type: 'http';
  url: string;
  method: (typeof HTTP_METHODS)[number];
  /** Sent as given; values are write-only (they usually carry the API's credentials). */
  headers: Record<string, string>;
  /** A JSON template (sent as JSON), a text template (sent as text), or null (no body). */
  body: unknown;
  /** Statuses that mean success; null: any 2xx. */
  expectedStatuses: number[] | null;
}

/** Headers the HTTP client sets itself. */
const TRANSPORT_HEADERS = new Set(['content-length', 'host', 'transfer-encoding', 'connection']);
/** Most of an answer kept as the job's result. */
const RESULT_BODY_CHARS = 4096;

/** One HTTP call of an action: the answer when its status is expected, else an `ActionFailure` (credentials scrubbed). */
export async function callHttp(
  request: { url: string; method: string; headers: Record<string, string>; body?: string; timeoutMs: number; expected: (status: number) => boolean; credentials: readonly string[] },
  delivery: Delivery,
): Promise<{ status: number; body: string }> {
  const response = await sendRequest({
    url: request.url,
    method: request.method,
    headers: request.headers,
    ...(request.body === undefined ? {} : { body: request.body }),
    timeoutMs: request.timeoutMs,
    allowPrivateNetworks: delivery.config.webhooks.allowPrivateNetworks,
    signal: delivery.signal,
    maxBodyChars: RESULT_BODY_CHARS,
  });
  // A server that echoes the request would put its credentials into the job, which `read` keys see.
  const body = redactValues(response.body, request.credentials);
  if (request.expected(response.status)) return { status: response.status, body };
  const failure = statusFailure(new URL(request.url).host, response.status, body.slice(0, 200));
  const wait = response.status === 429 || response.status === 503 ? retryAfterMs(response.headers['retry-after'], delivery.clock()) : null;
  if (wait === null) throw failure;
  throw new ActionFailure(failure.message, { ...failure.outcome, holdUntil: delivery.clock() + wait });
}

/** Longest wait a `Retry-After` may impose on a target. */
const MAX_RETRY_AFTER_MS = 3_600_000;

/**
 * A `Retry-After` header (seconds, or an HTTP date) as milliseconds from now,
 * capped at an hour; null when absent or unreadable.
 *
 * @example
 * retryAfterMs('3', Date.now()); // 3000
 */
export function retryAfterMs(header: string | string[] | undefined, now: number): number | null {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || value.trim() === '') return null;
  const ms = /^\s*\d+\s*$/.test(value) ? Number(value) * 1000 : Date.parse(value) - now;
  return Number.isFinite(ms) && ms > 0 ? Math.min(ms, MAX_RETRY_AFTER_MS) : null;
}

/** `headers` from the API, with the ones the client or Drover sets refused. */
export function checkHeaders(headers: unknown, reserved: ReadonlySet<string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries((headers ?? {}) as Record<string, string>)) {
    if (reserved.has(name.toLowerCase())) throw new DroverError('validation', `action.headers: ${name} is set by Drover`);
    out[name] = value;
  }
  return out;
}

const isJsonContent = (headers: Record<string, string>) =>
  Object.entries(headers).some(([name, value]) => name.toLowerCase() === 'content-type' && /[/+]json\b/i.test(value));

export const httpAction: ActionKind<HttpAction> = {
  type: 'http',
  handler: 'drover.http',

  async create(input, ctx) {
    const url = await checkUrl(input.url, 'action.url', ctx);
    const headers = checkHeaders(input.headers, TRANSPORT_HEADERS);
    const body = input.body ?? null;
    const method = (input.method as HttpAction['method'] | undefined) ?? 'POST';
    if (body !== null && (method === 'GET' || method === 'DELETE')) throw new DroverError('validation', `action.body: a ${method} request has no body; use POST, PUT or PATCH`);
    if (typeof body === 'string') compileTemplate(body, 'action.body', TEMPLATE_ROOTS);
    else if (body !== null) compileJsonTemplate(body, 'action.body', TEMPLATE_ROOTS);
    const expectedStatuses = Array.isArray(input.expectedStatuses) ? [...new Set(input.expectedStatuses as number[])] : null;
    return { type: 'http', url: url.toString(), method, headers, body, expectedStatuses, timeoutMs: checkTimeout(input.timeoutMs, ctx) };
  },

  parse: (stored) => stored,

  target: (action) => new URL(action.url).host,

  view: (action) => ({ type: 'http', url: redactUrl(action.url), method: action.method, headers: redactHeaders(action.headers), body: action.body, expectedStatuses: action.expectedStatuses, timeoutMs: action.timeoutMs }),

  credentials: (action) => actionCredentials({ url: action.url, headers: action.headers, secrets: [] }),

  async deliver(action, delivery) {
    const scope = templateScope(delivery);
    const headers = { ...action.headers };
    const has = (name: string) => Object.keys(headers).some((n) => n.toLowerCase() === name);
    let body: string | undefined;
    if (typeof action.body === 'string') {
      // A text body declared JSON gets each value JSON-escaped, so an event cannot break out of a string.
      body = renderTemplate(compileTemplate(action.body, 'action.body', TEMPLATE_ROOTS), scope, isJsonContent(headers) ? jsonStringEscape : undefined);
      if (!has('content-type')) headers['content-type'] = 'text/plain; charset=utf-8';
    } else if (action.body !== null && action.body !== undefined) {
      body = JSON.stringify(renderJsonTemplate(compileJsonTemplate(action.body, 'action.body', TEMPLATE_ROOTS), scope));
      if (!has('content-type')) headers['content-type'] = 'application/json';
    }
    if (!has('user-agent')) headers['user-agent'] = 'drover-http';
    const expected = action.expectedStatuses;
    const response = await callHttp(
      {
        url: action.url,
        method: action.method,
        headers,
        ...(body === undefined ? {} : { body }),
        timeoutMs: timeoutOf(action, delivery),
        expected: expected ? (s) => expected.includes(s) : (s) => s >= 200 && s < 300,
        credentials: httpAction.credentials(action),
      },
      delivery,
    );
    return { status: response.status, body: parseMaybeJson(response.body) };
  },
};

/** The answer as JSON when it is JSON (and whole), else its text. */
function parseMaybeJson(text: string): unknown {
  if (text === '' || text.length >= RESULT_BODY_CHARS) return text;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
