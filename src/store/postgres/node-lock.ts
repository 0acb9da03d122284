/**
 * One live process per node id: the id is a session-level advisory lock held
 * on the engine's LISTEN connection. PostgreSQL releases it when that session
 * ends, so a crashed process frees its id as soon as the server sees the
 * connection close, while a live (or frozen) one keeps it.
 */
import { DroverError } from '../../core/errors.js';
import { delay } from './connection.js';
import type { Notifier } from './notifier.js';

export const nodeLockKey = (schema: string, nodeId: string): string => `drover:node:${schema}:${nodeId}`;

/**
 * Take the node id's lock, waiting up to `waitMs` for a predecessor that was
 * killed a moment ago (its backend has not noticed the closed socket yet).
 */
export async function acquireNodeLock(notifier: Notifier, schema: string, nodeId: string, waitMs: number): Promise<void> {
  const deadline = Date.now() + waitMs;
  while (!(await notifier.tryLock(nodeLockKey(schema, nodeId)))) {
    if (Date.now() >= deadline) {
      throw new DroverError(
        'config_invalid',
        `node id "${nodeId}" is in use by another running drover on this store (schema ${schema}); give each node its own DROVER_NODE_ID`,
      );
    }
    await delay(200, { unref: true });
  }
}
