/**
 * Admin operations on the running node. `POST /v1/admin/log-level` changes the
 * log level without a restart (it lasts until the next start; `log.level` /
 * `DROVER_LOG_LEVEL` set it at start). The change is an operator action: it
 * is logged with the key that made it and the request id.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { LOG_LEVELS, type LogLevel } from '../../core/config.js';
import type { Logger } from '../../obs/logger.js';
import { recordOperatorAction } from '../../ops/audit/operator-action.js';
import type { Runtime } from '../../runtime/runtime.js';
import { routeConfig } from './scopes.js';

const levelBody = {
  type: 'object',
  required: ['level'],
  additionalProperties: false,
  properties: { level: { type: 'string', enum: [...LOG_LEVELS] } },
} as const;

/** What the admin routes need from the node (logger level changes, audited): the runtime satisfies it. */
export type AdminRouteDeps = Pick<Runtime, 'logger' | 'audit'>;

export function adminRoutes(runtime: AdminRouteDeps) {
  const { logger } = runtime;
  return async function plugin(app: FastifyInstance): Promise<void> {
    app.get('/v1/admin/log-level', { config: routeConfig('GET /v1/admin/log-level') }, async () => ({ level: logger.level }));

    app.post<{ Body: { level: LogLevel } }>('/v1/admin/log-level', { config: routeConfig('POST /v1/admin/log-level'), schema: { body: levelBody } }, async (request) => {
      const previous = logger.level;
      const { level } = request.body;
      const record = () =>
        request.log[recordLevel(request)]({ action: 'log_level.set', key_id: request.apiKey?.id ?? null, from: previous, to: level }, `operator set the log level to ${level}`);
      // Recorded where it stays visible: after the change when the new level
      // still writes warnings, else before it, under the old level.
      const visibleAfter = level === 'trace' || level === 'debug' || level === 'info' || level === 'warn';
      if (!visibleAfter) record();
      logger.level = level;
      request.log.level = level;
      if (visibleAfter) record();
      await recordOperatorAction(runtime, request, { action: 'log.level', target: 'node:log-level', before: { level: previous }, after: { level } });
      return { level, previous };
    });
  };
}

/** The most visible level the request logger would still write (operator actions should not vanish). */
function recordLevel(request: FastifyRequest): 'warn' | 'error' | 'fatal' {
  const log = request.log as Logger; // the runtime's pino logger's child
  if (log.isLevelEnabled('warn')) return 'warn';
  if (log.isLevelEnabled('error')) return 'error';
  return 'fatal';
}
