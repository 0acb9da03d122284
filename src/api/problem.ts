/**
 * Every API error leaves as `application/problem+json` (RFC 9457) with a stable
 * `type` from the error registry. Fastify's own errors (bad JSON, body too
 * large, schema validation) are mapped onto registry codes here, once.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DroverError, ERROR_CODES, PROBLEM_BASE, type ErrorCode } from '../core/errors.js';

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'malformed_json',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'malformed_json',
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'malformed_json',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_BAD_URL: 'malformed_url',
};

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  request_id?: string;
  [extension: string]: unknown;
}

/** The content type of every problem answer. */
export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';

/** A problem's body for a request to `url` (the probe server builds it without Fastify). */
export function problemBody(error: DroverError, url: string, requestId: string): Problem {
  return {
    type: error.type,
    title: ERROR_CODES[error.code].title,
    status: error.status,
    detail: error.message,
    instance: url.split('?')[0] ?? url,
    request_id: requestId,
    ...error.extensions,
  };
}

export function sendProblem(reply: FastifyReply, request: FastifyRequest, error: DroverError): FastifyReply {
  const body = problemBody(error, request.url, String(request.id));
  if (error.retryAfterSeconds !== undefined) reply.header('retry-after', String(error.retryAfterSeconds));
  return reply.code(error.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(body));
}

/** The answer to a request no route matched. */
export function routeNotFound(method: string, url: string): DroverError {
  return new DroverError('route_not_found', `no route ${method} ${url.split('?')[0]}; see docs/api.md`);
}

/** Map anything thrown in a request onto a DroverError. */
export function toDroverError(error: FastifyError | Error): DroverError {
  if (error instanceof DroverError) return error;
  const fastifyError = error as FastifyError;
  if (fastifyError.validation) {
    const errors = fastifyError.validation.map((v) => ({
      path: `${fastifyError.validationContext ?? 'body'}${v.instancePath.replace(/\//g, '.')}`,
      message: `${v.message ?? 'is invalid'}${typeof v.params?.additionalProperty === 'string' ? ` ("${v.params.additionalProperty}")` : ''}`,
      ...(v.params && Object.keys(v.params).length > 0 ? { params: v.params } : {}),
    }));
    const first = headline(errors);
    const detail = first ? `${first.path}: ${first.message}${errors.length > 1 ? ` (and ${errors.length - 1} more)` : ''}` : error.message;
    return new DroverError('validation', detail, { extensions: { errors } });
  }
  const mapped = fastifyError.code ? FASTIFY_CODES[fastifyError.code] : undefined;
  if (mapped) return new DroverError(mapped, error.message, { cause: error });
  const status = fastifyError.statusCode;
  if (status === 413) return new DroverError('payload_too_large', error.message, { cause: error });
  if (status === 415) return new DroverError('unsupported_media_type', error.message, { cause: error });
  if (status !== undefined && status >= 400 && status < 500) {
    // A client error Fastify raised that we have no code for: keep it a 4xx.
    return new DroverError(status === 404 ? 'not_found' : 'validation', error.message, { cause: error });
  }
  return new DroverError('internal', 'internal error; the request id in this response finds it in the logs', { cause: error });
}

/**
 * The error to name in `detail`: the deepest one. A body that is one item or a
 * batch (`anyOf`) fails both branches; `jobs.3.handler` says more than "must
 * have required property 'handler'" about the branch the caller did not mean.
 */
function headline<E extends { path: string; message: string }>(errors: E[]): E | undefined {
  let best: E | undefined;
  let bestDepth = -1;
  for (const error of errors) {
    if (error.message.startsWith('must match a schema in anyOf')) continue;
    const depth = error.path.split('.').length;
    if (depth > bestDepth) [best, bestDepth] = [error, depth];
  }
  return best ?? errors[0];
}

export function registerProblemHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const problem = toDroverError(error);
    if (problem.status >= 500) request.log.error({ err: error }, 'request failed');
    return sendProblem(reply, request, problem);
  });
  app.setNotFoundHandler((request, reply) => sendProblem(reply, request, routeNotFound(request.method, request.url)));
}

export { PROBLEM_BASE };
