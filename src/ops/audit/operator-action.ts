/**
 * One call for route authors: record the operator action a request made,
 * with the request's API key as the actor and its request id.
 */
import type { FastifyRequest } from 'fastify';
import type { AuditRecord } from '../../core/types.js';
import type { AuditSink } from '../../runtime/audit-sink.js';
import type { OperatorAction } from './audit-trail.js';

/**
 * @example
 * const { before, job } = await runtime.jobControl.cancel(id);
 * await recordOperatorAction(runtime, request, { action: 'job.cancel', target: `job:${before.id}`, before: { state: before.state }, after: { state: job.state } });
 */
export function recordOperatorAction(
  runtime: { audit: AuditSink },
  request: FastifyRequest,
  action: Omit<OperatorAction, 'actor' | 'requestId'>,
): Promise<AuditRecord> {
  return runtime.audit.record({ ...action, actor: request.apiKey?.id ?? 'anonymous', requestId: String(request.id) });
}
