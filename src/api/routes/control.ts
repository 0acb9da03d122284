/**
 * Operator controls: pause, resume and reset handlers; pause and resume
 * queues. A pause stops leasing (in-process and remote) and nothing else:
 * intake still queues work and running jobs finish. Pauses are persisted and
 * survive a restart. Each action is logged with the request id and the key
 * that made it.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { recordOperatorAction } from '../../ops/audit/operator-action.js';
import type { Runtime } from '../../runtime/runtime.js';
import { handlerJson, runningByHandler } from './handler-state.js';
import { routeConfig } from './scopes.js';

export const nameParam = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', minLength: 1, maxLength: 100 } },
} as const;

type NameRequest = FastifyRequest<{ Params: { name: string } }>;

/** What the control routes need from the node (handler and queue steering, audited): the runtime satisfies it. */
export type ControlRouteDeps = Pick<Runtime, 'config' | 'pauses' | 'supervision' | 'dispatcher' | 'audit'>;

export function controlRoutes(runtime: ControlRouteDeps) {
  const { config, pauses } = runtime;
  const actor = (request: FastifyRequest) => ({ key_id: request.apiKey?.id ?? null });

  const handlerAction = (action: 'pause' | 'resume' | 'reset') => async (request: NameRequest) => {
    const { name } = request.params;
    const state = () => ({ paused: pauses.isHandlerPaused(name), quarantined: runtime.supervision.isQuarantined(name), breaker: runtime.supervision.breakerState(name) });
    const before = state();
    await pauses.setHandler(name, action);
    // Reset also clears quarantine and the circuit breaker; the handler's waiting jobs then run.
    if (action === 'reset') await runtime.supervision.reset(name);
    await recordOperatorAction(runtime, request, { action: `handler.${action}`, target: `handler:${name}`, before, after: state() });
    request.log.info({ handler: name, action, ...actor(request) }, `handler ${action === 'pause' ? 'paused' : action === 'resume' ? 'resumed' : 'reset'}`);
    return handlerJson(runtime, config.handlers.get(name)!, runningByHandler(runtime));
  };

  const queueAction = (action: 'pause' | 'resume') => async (request: NameRequest) => {
    const { name } = request.params;
    const wasPaused = pauses.isQueuePaused(name);
    await pauses.setQueue(name, action);
    await recordOperatorAction(runtime, request, { action: `queue.${action}`, target: `queue:${name}`, before: { paused: wasPaused }, after: { paused: pauses.isQueuePaused(name) } });
    request.log.info({ queue: name, action, ...actor(request) }, action === 'pause' ? 'queue paused' : 'queue resumed');
    return { name, paused: pauses.isQueuePaused(name), maxDepth: config.queues.get(name)?.maxDepth ?? null };
  };

  return async function plugin(app: FastifyInstance): Promise<void> {
    const opts = (route: Parameters<typeof routeConfig>[0]) => ({ config: routeConfig(route), schema: { params: nameParam } });
    app.post('/v1/handlers/:name/pause', opts('POST /v1/handlers/:name/pause'), handlerAction('pause'));
    app.post('/v1/handlers/:name/resume', opts('POST /v1/handlers/:name/resume'), handlerAction('resume'));
    // Reset clears a pause, the quarantine and the breaker, and answers with the handler's state.
    app.post('/v1/handlers/:name/reset', opts('POST /v1/handlers/:name/reset'), handlerAction('reset'));
    app.post('/v1/queues/:name/pause', opts('POST /v1/queues/:name/pause'), queueAction('pause'));
    app.post('/v1/queues/:name/resume', opts('POST /v1/queues/:name/resume'), queueAction('resume'));
  };
}
