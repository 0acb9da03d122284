/**
 * Errors Node's HTTP parser raises before a request exists (a malformed request
 * line, headers over the size limit, a request that did not arrive within
 * `server.requestTimeoutMs`) never reach Fastify's error handler. Answer them
 * as problem+json like every other error, then close the connection: the
 * parser's state is lost, so nothing more can be read from it.
 */
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyBaseLogger } from 'fastify';
import { DroverError, ERROR_CODES, type ErrorCode } from '../core/errors.js';

const BY_NODE_CODE: Record<string, { code: ErrorCode; detail: string }> = {
  HPE_HEADER_OVERFLOW: { code: 'headers_too_large', detail: 'the request headers exceed the server limit (16 KiB); send fewer or shorter headers' },
  ERR_HTTP_REQUEST_TIMEOUT: { code: 'request_timeout', detail: 'the request did not arrive within server.requestTimeoutMs; send it faster or raise the limit' },
};
const MALFORMED = { code: 'malformed_request' as const, detail: 'the request is not valid HTTP/1.1; check the request line and headers' };

/**
 * A Fastify `clientErrorHandler`: writes a minimal problem+json response.
 *
 * @example
 * Fastify({ clientErrorHandler: clientErrorHandler(logger) });
 */
export function clientErrorHandler(logger: FastifyBaseLogger) {
  return function onClientError(error: Error & { code?: string }, socket: Socket): void {
    // A reset or already closed connection has no one left to answer.
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const known = (error.code ? BY_NODE_CODE[error.code] : undefined) ?? MALFORMED;
    const problem = new DroverError(known.code, known.detail);
    logger.debug({ err: error, code: known.code }, 'client error before routing');
    // As Node does: never write an error into a response that has already begun (its headers are out).
    const current = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (socket.writable && !current?.headersSent) {
      const body = JSON.stringify({ type: problem.type, title: ERROR_CODES[problem.code].title, status: problem.status, detail: known.detail });
      socket.write(
        `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status] ?? 'Error'}\r\n` +
          'Content-Type: application/problem+json; charset=utf-8\r\n' +
          `Content-Length: ${Buffer.byteLength(body)}\r\n` +
          'X-Content-Type-Options: nosniff\r\n' +
          'Cache-Control: no-store\r\n' +
          'Connection: close\r\n\r\n' +
          body,
      );
    }
    socket.destroy();
  };
}
