/** `drover start`: run a node until SIGINT/SIGTERM, then shut down gracefully and exit 0. */
import type { Command } from 'commander';
import { resolveConfig } from '../../core/config.js';
import { releaseConfigSchema } from '../../core/config-schema.js';
import { DEFAULT_CONFIG_PATH, loadConfigModule } from '../load-config.js';
import { parseStoreUrl } from '../../core/store-url.js';
import { startNode } from '../../node/start-node.js';
import { LOW_MEMORY_SQLITE_CACHE_KIB } from '../../store/open.js';
import { LOW_MEMORY_LEASE_AHEAD } from '../../runtime/lease-window.js';
import { LOG_FLUSH_MS } from '../../obs/logger.js';
import { SHUTDOWN_ALLOWANCE_MS } from '../../runtime/shutdown.js';
import { parsePort } from './options.js';
import { applyLowMemory, describeLowMemory, wantsLowMemory } from '../low-memory.js';

export function registerStartCommand(program: Command): void {
  program
    .command('start')
    .description('start a node: migrate the store, run the handlers, serve the API')
    .option('-c, --config <file>', 'config module (TypeScript or JavaScript)', DEFAULT_CONFIG_PATH)
    .option('--host <host>', 'listen address (env DROVER_HOST, default 127.0.0.1)')
    .option('--port <port>', 'listen port (env DROVER_PORT, default 7070)', parsePort)
    .option('--admin-key-output <file>', 'on the first start, write the generated admin key to this new file (mode 0600) instead of printing it (env DROVER_ADMIN_KEY_OUTPUT)')
    .option('--no-migrate', 'do not apply pending migrations (run `drover migrate` first); still refuse a schema that is behind or ahead')
    .option('--worker-only', 'run the handlers without the HTTP API: the port serves only /health/* and /metrics (env DROVER_WORKER_ONLY=true)')
    .option('--low-memory', 'a smaller heap for more GC work: old space grows less between major GCs, the young generation stops at 4 MiB semi-spaces, a SQLite node keeps a 1 MiB page cache and leases 64 jobs ahead (env DROVER_LOW_MEMORY=true)')
    .action(async (opts: { config: string; host?: string; port?: number; migrate: boolean; adminKeyOutput?: string; workerOnly?: boolean; lowMemory?: boolean }) => {
      const lowMemory = wantsLowMemory(opts.lowMemory, process.env) ? applyLowMemory() : null;
      const raw = await loadConfigModule(opts.config);
      const config = resolveConfig(raw, process.env, {
        ...(opts.host ? { host: opts.host } : {}),
        ...(opts.port !== undefined ? { port: opts.port } : {}),
      });
      const bootstrap = process.env.DROVER_BOOTSTRAP_ADMIN_KEY;
      const keyOutput = opts.adminKeyOutput || process.env.DROVER_ADMIN_KEY_OUTPUT;
      const workerOnly = opts.workerOnly === true || process.env.DROVER_WORKER_ONLY === 'true';
      // Handlers before the node starts: a supervisor may signal the moment the ready line appears, before
      // startNode has returned. A signal during start is held and acted on once the node runs; a second one exits.
      let node: Awaited<ReturnType<typeof startNode>> | null = null;
      let held: NodeJS.Signals | null = null;
      let signals = 0;
      const onSignal = (signal: NodeJS.Signals) => {
        signals++;
        const running = node;
        if (!running) {
          if (signals > 1) process.exit(130);
          held = signal;
          return;
        }
        if (signals > 1) {
          running.logger.warn({ signal }, 'second signal: exiting now without draining');
          running.logger.flush?.();
          process.exit(130);
        }
        running.logger.info({ signal, grace_ms: config.shutdown.graceMs }, 'shutting down: intake stopped, draining running jobs');
        // The deadline holds whatever shutdown waits on; the final log flush (bounded too) comes after it.
        const deadlineMs = config.shutdown.graceMs + SHUTDOWN_ALLOWANCE_MS - LOG_FLUSH_MS;
        setTimeout(() => {
          running.logger.error({ deadline_ms: deadlineMs }, 'shutdown did not finish within shutdown.graceMs + the allowance; exiting now');
          process.exit(1);
        }, deadlineMs).unref();
        running.shutdown().then(
          () => process.exit(0),
          (error: unknown) => {
            running.logger.error({ err: error }, 'shutdown failed');
            process.exit(1);
          },
        );
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      const started = await startNode({
        config,
        configPath: opts.config,
        migrate: opts.migrate,
        ...(workerOnly ? { api: false } : {}),
        ...(lowMemory ? { lowMemory: true } : {}),
        ...(bootstrap ? { bootstrapAdminKey: bootstrap } : {}),
        ...(keyOutput ? { adminKeyOutput: keyOutput } : {}),
      });
      node = started;
      // The node's config is resolved for good (and the runtime's action handlers with it): zod and the schema (~3 MiB of heap) can go.
      releaseConfigSchema();
      if (lowMemory) {
        const { fields, message } = describeLowMemory(lowMemory);
        const store = parseStoreUrl(config.databaseUrl);
        const sqlite = 'engine' in store && store.engine === 'sqlite' ? { sqlite_cache_kib: LOW_MEMORY_SQLITE_CACHE_KIB, lease_ahead: LOW_MEMORY_LEASE_AHEAD } : {};
        started.logger.info({ ...fields, ...sqlite }, message);
      }
      if (held) {
        signals = 0;
        onSignal(held);
      }
      // SIGHUP: load a renewed TLS certificate (server.tls); without TLS it is ignored rather than ending the process.
      process.on('SIGHUP', () => {
        try {
          if (!started.reloadTls('SIGHUP')) started.logger.info('SIGHUP ignored: server.tls is not set');
        } catch (error) {
          started.logger.error({ err: error }, 'TLS reload failed; the previous certificate stays in use');
        }
      });
    });
}
