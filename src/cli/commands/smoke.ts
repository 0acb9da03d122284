/**
 * `drover smoke`: after a deploy, send an event to the built-in `drover.smoke`
 * handler of a running node (DROVER_URL, DROVER_API_KEY with `produce` and
 * `read`) and wait until its job succeeded: intake, routing, dispatch, the
 * worker and completion all work. Exit 1 when it does not within the timeout.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { DroverError } from '../../core/errors.js';
import { SMOKE_EVENT, SMOKE_HANDLER } from '../../ops/doctor/smoke-handler.js';
import { call } from '../http.js';

export function registerSmokeCommand(program: Command): void {
  program
    .command('smoke')
    .description(`send a ${SMOKE_EVENT} event to a running node and wait for the built-in probe job to succeed`)
    .option('--timeout <seconds>', 'how long to wait', (v) => {
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number of seconds');
      return n;
    }, 30)
    .action(async (opts: { timeout: number }) => {
      const started = Date.now();
      const sent = (await call('POST', '/v1/events', { name: SMOKE_EVENT, data: { at: new Date(started).toISOString() } })) as { jobs?: Array<{ id: string; handler: string }> };
      const job = sent.jobs?.find((j) => j.handler === SMOKE_HANDLER);
      if (!job) throw new DroverError('unknown_handler', `the node created no ${SMOKE_HANDLER} job; is it older than this CLI?`);
      const deadline = started + opts.timeout * 1000;
      let delay = 50;
      for (;;) {
        const current = (await call('GET', `/v1/jobs/${encodeURIComponent(job.id)}`)) as { state: string; lastError?: unknown };
        if (current.state === 'succeeded') {
          process.stdout.write(`smoke ok: job ${job.id} succeeded in ${Date.now() - started} ms\n`);
          return;
        }
        if (current.state === 'dead' || current.state === 'cancelled') {
          throw new DroverError('invalid_state', `smoke job ${job.id} ended ${current.state}; see \`drover jobs get ${job.id}\``);
        }
        if (Date.now() > deadline) {
          throw new DroverError('invalid_state', `smoke job ${job.id} is still ${current.state} after ${opts.timeout} s: is the default queue or the ${SMOKE_HANDLER} handler paused, or the node overloaded?`);
        }
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(delay * 2, 500);
      }
    });
}
