/**
 * Snapshots over HTTP (admin): take a consistent copy of the store while the
 * node serves, then fetch it chunk by chunk, each with its SHA-256, so a copy
 * leaves the box without shell access (`drover backup pull`; docs/api.md).
 *
 * Chunks are `application/octet-stream` with the chunk's SHA-256 in
 * `X-Drover-Chunk-Sha256` (hex) and `Repr-Digest` (RFC 9530): raw bytes cost
 * a third less than base64 in JSON, and every HTTP client can stream them.
 */
import type { FastifyInstance } from 'fastify';
import { DroverError } from '../../core/errors.js';
import { MAX_CHUNK_BYTES, MIN_CHUNK_BYTES, type SnapshotService } from '../../ops/backup/snapshots.js';
import type { AuditSink } from '../../runtime/audit-sink.js';
import { recordOperatorAction } from '../../ops/audit/operator-action.js';
import { routeConfig } from './scopes.js';

const idParam = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^snap_[0-9a-f]{24}$' } },
} as const;

const createBody = {
  type: 'object',
  additionalProperties: false,
  properties: { chunkBytes: { type: 'integer', minimum: MIN_CHUNK_BYTES, maximum: MAX_CHUNK_BYTES } },
} as const;

const chunkParams = {
  type: 'object',
  required: ['id', 'n'],
  properties: { id: idParam.properties.id, n: { type: 'string', pattern: '^[0-9]{1,9}$' } },
} as const;

/** What the snapshot routes need: the node's snapshot service (null: the node has none, e.g. in tests) and the audit sink. */
export interface SnapshotRouteDeps {
  snapshots: () => SnapshotService | null;
  audit: AuditSink;
}

export function snapshotRoutes(deps: SnapshotRouteDeps) {
  const service = (): SnapshotService => {
    const snapshots = deps.snapshots();
    if (!snapshots) throw new DroverError('snapshot_not_ready', 'this node takes no snapshots until it has started', { retryAfterSeconds: 2 });
    return snapshots;
  };
  return async function plugin(app: FastifyInstance): Promise<void> {
    app.post<{ Body: { chunkBytes?: number } | undefined }>(
      '/v1/snapshots',
      {
        config: routeConfig('POST /v1/snapshots'),
        schema: { body: createBody },
        // The body is optional: none at all means the default chunk size.
        preValidation: async (request) => {
          request.body ??= {};
        },
      },
      async (request, reply) => {
        const manifest = await service().create(request.apiKey?.id ?? 'anonymous', request.body?.chunkBytes);
        request.log.info({ snapshot: manifest.id, bytes: manifest.size, chunks: manifest.chunkCount, key_id: request.apiKey?.id ?? null }, 'snapshot taken');
        return reply.code(201).send(manifest);
      },
    );

    app.get('/v1/snapshots', { config: routeConfig('GET /v1/snapshots') }, async () => ({ snapshots: service().list() }));

    app.get<{ Params: { id: string } }>('/v1/snapshots/:id', { config: routeConfig('GET /v1/snapshots/:id'), schema: { params: idParam } }, async (request) =>
      service().manifest(request.params.id),
    );

    app.get<{ Params: { id: string; n: string } }>(
      '/v1/snapshots/:id/chunks/:n',
      { config: routeConfig('GET /v1/snapshots/:id/chunks/:n'), schema: { params: chunkParams } },
      async (request, reply) => {
        const { bytes, sha256 } = await service().chunk(request.params.id, Number(request.params.n));
        return reply
          .header('content-type', 'application/octet-stream')
          .header('cache-control', 'no-store')
          .header('x-drover-chunk-sha256', sha256)
          .header('repr-digest', `sha-256=:${Buffer.from(sha256, 'hex').toString('base64')}:`)
          .send(bytes);
      },
    );

    app.delete<{ Params: { id: string } }>('/v1/snapshots/:id', { config: routeConfig('DELETE /v1/snapshots/:id'), schema: { params: idParam } }, async (request, reply) => {
      const { id } = request.params;
      if (!service().delete(id)) throw new DroverError('not_found', `no snapshot ${id} on this node`);
      await recordOperatorAction(deps, request, { action: 'snapshot.delete', target: `snapshot:${id}` });
      return reply.code(204).send();
    });
  };
}
