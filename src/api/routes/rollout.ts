/**
 * Release channel and feature gates over HTTP: `GET /v1/status/rollout` and
 * `GET /v1/gates` for anyone who may read status, `POST /v1/gates/:name`
 * (admin, audited) to override a gate on every node sharing the store, or to
 * remove the override (`{"enabled": null}`: back to the config value).
 */
import type { FastifyInstance } from 'fastify';
import { recordOperatorAction } from '../../ops/audit/operator-action.js';
import type { Runtime } from '../../runtime/runtime.js';
import { VERSION } from '../../version.js';
import { routeConfig } from './scopes.js';

const nameParam = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]{0,62}$' } },
} as const;

const setBody = {
  type: 'object',
  required: ['enabled'],
  additionalProperties: false,
  properties: { enabled: { type: ['boolean', 'null'] } },
} as const;

/** What the rollout routes need: the config's channel, the live gates and the audit sink. */
export type RolloutRouteDeps = Pick<Runtime, 'config' | 'gates' | 'audit'>;

export function rolloutRoutes(runtime: RolloutRouteDeps) {
  const view = () => ({ version: VERSION, channel: runtime.config.rollout.channel, channels: runtime.config.rollout.channels, gates: runtime.gates.list() });
  return async function plugin(app: FastifyInstance): Promise<void> {
    app.get('/v1/status/rollout', { config: routeConfig('GET /v1/status/rollout') }, async () => view());
    app.get('/v1/gates', { config: routeConfig('GET /v1/gates') }, async () => ({ gates: runtime.gates.list() }));
    app.post<{ Params: { name: string }; Body: { enabled: boolean | null } }>(
      '/v1/gates/:name',
      { config: routeConfig('POST /v1/gates/:name'), schema: { params: nameParam, body: setBody } },
      async (request) => {
        const { name } = request.params;
        const { before, after } = await runtime.gates.set(name, request.body.enabled);
        await recordOperatorAction(runtime, request, {
          action: 'gate.set',
          target: `gate:${name}`,
          before: { enabled: before.enabled, source: before.source },
          after: { enabled: after.enabled, source: after.source },
        });
        request.log.info({ gate: name, enabled: after.enabled, source: after.source, key_id: request.apiKey?.id ?? null }, 'feature gate set');
        return after;
      },
    );
  };
}
