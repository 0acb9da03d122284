/**
 * Least privilege on `/v1/workers/*` (docs/remote-workers.md, "Key scope").
 *
 * A `work` key may lease only the handlers its scope allows (by default those
 * declared `remote: true`; never the built-in `drover.*`), and may heartbeat,
 * complete, fail or release only jobs it leased itself: a lease token that
 * leaked from one worker host is useless with another host's key. `admin`
 * keys keep full power. Each refusal is a 403 problem+json and a warning in
 * the log with the key's id (never the key).
 */
import type { FastifyRequest } from 'fastify';
import type { ResolvedHandler } from '../../core/config.js';
import { DroverError } from '../../core/errors.js';
import { describeWorkScope, mayWorkOn } from '../../core/key-scope.js';
import type { ApiKeyRow, JobRow } from '../../core/types.js';

export type WorkOp = 'lease' | 'heartbeat' | 'complete' | 'fail' | 'release' | 'steps' | 'step' | 'suspend';

/** The key the request carries, unless it is admin (which may work on anything). */
function scopedKey(request: FastifyRequest): ApiKeyRow | null {
  const key = request.apiKey;
  return key && !key.scopes.includes('admin') ? key : null;
}

/** Names of the configured handlers this request's key may lease (for the unknown-handler message). */
export function leasableHandlers(request: FastifyRequest, handlers: ReadonlyMap<string, ResolvedHandler>): string[] {
  const key = scopedKey(request);
  return [...handlers.values()].filter((h) => key === null || mayWorkOn(key, h)).map((h) => h.name);
}

/** Refuse a lease that names a handler outside the key's scope (the whole request: nothing is leased). */
export function assertMayLease(request: FastifyRequest, handlers: ReadonlyMap<string, ResolvedHandler>, names: readonly string[]): void {
  const key = scopedKey(request);
  if (key === null) return;
  const denied = names.filter((name) => {
    const handler = handlers.get(name);
    return handler !== undefined && !mayWorkOn(key, handler);
  });
  if (denied.length === 0) return;
  request.log.warn({ key_id: key.id, op: 'lease', handlers: denied }, 'work key refused: handlers outside its scope');
  throw new DroverError(
    'handler_not_allowed',
    `this key may not lease ${denied.map((n) => `"${n}"`).join(', ')}: it may work on ${describeWorkScope(key)}. ` +
      'Lease only those, or use a key created with `drover keys create --scopes work --handlers <patterns>`',
    { extensions: { handlers: denied } },
  );
}

/**
 * Refuse heartbeat, complete, fail or release of a job outside the key's
 * scope, or of a lease another key took. `job` is the row read before the
 * fenced write: the write still checks the token, so a lease taken after
 * the read cannot slip through (its token is one the caller has not seen).
 */
export function assertMayTouch(request: FastifyRequest, op: WorkOp, handlers: ReadonlyMap<string, ResolvedHandler>, job: JobRow | null, token: string): void {
  const key = scopedKey(request);
  if (key === null || job === null) return;
  // A handler dropped from the config since: judged by name alone (patterns may still cover it).
  if (!mayWorkOn(key, handlers.get(job.handler) ?? { name: job.handler, remote: false })) {
    request.log.warn({ key_id: key.id, op, job_id: job.id, handler: job.handler }, 'work key refused: job of a handler outside its scope');
    throw new DroverError('handler_not_allowed', `job ${job.id} belongs to a handler this key may not work on (it may work on ${describeWorkScope(key)}); nothing was changed`, {
      extensions: { jobId: job.id },
    });
  }
  if (job.state === 'running' && job.leaseToken === token && job.leaseKeyId !== key.id) {
    request.log.warn({ key_id: key.id, op, job_id: job.id, handler: job.handler, lease_key_id: job.leaseKeyId }, 'work key refused: the lease was taken with another key');
    throw new DroverError('lease_key_mismatch', `job ${job.id} was leased with another API key; only that key may heartbeat, complete, fail or release it. Nothing was changed`, {
      extensions: { jobId: job.id },
    });
  }
}
