/**
 * `drover jobs ...` and `drover handlers list` talk to a running node over
 * HTTP (DROVER_URL, DROVER_API_KEY), so they work the same against any node
 * and any engine.
 */
import type { Command } from 'commander';
import { call, print } from '../http.js';
import { registerEnqueueCommand } from './enqueue.js';

export function registerJobCommands(program: Command): void {
  const jobs = program.command('jobs').description('inspect and steer jobs on a running node (DROVER_URL, DROVER_API_KEY)');
  jobs.command('get <id>').description('show a job and its attempts').action(async (id: string) => print(await call('GET', `/v1/jobs/${encodeURIComponent(id)}`)));
  jobs
    .command('list')
    .description('list jobs, newest first')
    .option('--state <state>')
    .option('--handler <name>')
    .option('--queue <name>')
    .option('--limit <n>', 'page size', '50')
    .action(async (opts: Record<string, string>) => {
      const query = new URLSearchParams(Object.entries(opts).filter(([, v]) => v !== undefined));
      print(await call('GET', `/v1/jobs?${query}`));
    });
  jobs.command('cancel <id>').description('cancel an unfinished job').action(async (id: string) => print(await call('POST', `/v1/jobs/${encodeURIComponent(id)}/cancel`)));
  jobs.command('retry <id>').description('run a dead or cancelled job again').action(async (id: string) => print(await call('POST', `/v1/jobs/${encodeURIComponent(id)}/retry`)));
  registerEnqueueCommand(jobs);

  program
    .command('send <event>')
    .description('send an event')
    .option('--data <json>', 'JSON data', '{}')
    .option('--id <id>', 'idempotency key')
    .action(async (name: string, opts: { data: string; id?: string }) =>
      print(await call('POST', '/v1/events', { name, data: JSON.parse(opts.data), ...(opts.id ? { id: opts.id } : {}) })),
    );

  const handlers = program.command('handlers').description('inspect handlers on a running node');
  handlers.command('list').description('handlers with their policy and running count').action(async () => print(await call('GET', '/v1/handlers')));
  for (const action of ['reset', 'pause', 'resume'] as const) {
    const what = { reset: 'clear a handler\'s quarantine, circuit breaker and pause', pause: 'stop leasing a handler\'s jobs', resume: 'lease a paused handler\'s jobs again' }[action];
    handlers.command(`${action} <name>`).description(what).action(async (name: string) => print(await call('POST', `/v1/handlers/${encodeURIComponent(name)}/${action}`)));
  }
}
