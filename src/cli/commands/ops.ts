/**
 * Routine operator commands over HTTP (DROVER_URL, DROVER_API_KEY), the ones
 * the runbook (docs/operations.md, "Routine tasks") uses: `drover queues
 * list|pause|resume`, `drover handlers retry-dead`, `drover log-level`.
 * `drover handlers reset|pause|resume` live in jobs.ts.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { call, print } from '../http.js';

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export function registerOpsCommands(program: Command): void {
  const queues = program.command('queues').description('inspect and pause queues on a running node (DROVER_URL, DROVER_API_KEY)');
  queues.command('list').description('queues with their paused flag and maxDepth').action(async () => print(await call('GET', '/v1/queues')));
  queues.command('pause <name>').description('stop leasing the queue’s jobs (intake continues)').action(async (name: string) => print(await call('POST', `/v1/queues/${encodeURIComponent(name)}/pause`)));
  queues.command('resume <name>').description('lease the queue’s jobs again').action(async (name: string) => print(await call('POST', `/v1/queues/${encodeURIComponent(name)}/resume`)));

  // `handlers` is declared in jobs.ts; add to it rather than declare it twice.
  const handlers = program.commands.find((c) => c.name() === 'handlers') ?? program.command('handlers').description('inspect handlers on a running node');
  handlers
    .command('retry-dead <name>')
    .description('run every dead job of a handler again (after fixing the cause)')
    .option('--limit <n>', 'retry at most this many', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive integer');
      return n;
    }, 10_000)
    .action(async (name: string, opts: { limit: number }) => {
      // Collect first, then retry: a retried job leaves `dead`, which would shift the pages under us.
      const ids: string[] = [];
      let cursor: string | null = null;
      do {
        const query = new URLSearchParams({ state: 'dead', handler: name, limit: '100', ...(cursor ? { cursor } : {}) });
        const page = (await call('GET', `/v1/jobs?${query}`)) as { jobs: Array<{ id: string }>; nextCursor: string | null };
        ids.push(...page.jobs.map((j) => j.id));
        cursor = page.nextCursor;
      } while (cursor && ids.length < opts.limit);
      const chosen = ids.slice(0, opts.limit);
      for (const id of chosen) await call('POST', `/v1/jobs/${encodeURIComponent(id)}/retry`);
      print({ handler: name, retried: chosen.length });
    });

  program
    .command('log-level [level]')
    .description(`show, or change without a restart, the node's log level (${LEVELS.join(', ')}); lasts until the next start`)
    .action(async (level: string | undefined) => {
      if (level === undefined) return print(await call('GET', '/v1/admin/log-level'));
      if (!LEVELS.includes(level)) throw new InvalidArgumentError(`unknown level "${level}"; expected one of ${LEVELS.join(', ')}`);
      print(await call('POST', '/v1/admin/log-level', { level }));
    });
}
