/**
 * Before a node creates any state (migrates the store, prints the one-time
 * admin key), make sure it can listen where it was told to: bind the address
 * and let it go. A port in use is then an error with nothing done, and the
 * next start on a free port prints the key. Not `config_invalid` (exit 78,
 * which the systemd unit does not restart): the port may be held only until
 * the previous process has finished draining, so the exit is 1 and a
 * supervisor tries again.
 */
import { createServer } from 'node:net';
import { DroverError } from '../core/errors.js';

/**
 * Throw a clear error when `host:port` cannot be bound; port 0 always can.
 * @example
 * await assertCanListen('127.0.0.1', 7070, '--port / DROVER_PORT');
 */
export async function assertCanListen(host: string, port: number, setting: string): Promise<void> {
  if (port === 0) return;
  const server = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port, exclusive: true }, resolve);
    });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'EADDRINUSE' ? 'the address is already in use (another drover node or program listens there)'
      : code === 'EACCES' ? 'permission denied (ports below 1024 need privileges)'
      : code === 'EADDRNOTAVAIL' ? 'no interface on this machine has that address'
      : String((error as Error).message);
    throw new DroverError('internal', `cannot listen on ${host}:${port}: ${why}; choose another with ${setting}. Nothing was changed: the store was not opened.`, { cause: error });
  } finally {
    await new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
  }
}
