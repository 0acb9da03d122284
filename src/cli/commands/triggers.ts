/**
 * `drover triggers ...`: runtime triggers with built-in actions (webhook,
 * http, telegram, mcp) on a running node over HTTP (DROVER_URL,
 * DROVER_API_KEY, an admin key). The action is given as JSON, exactly the
 * `action` member of `POST /v1/triggers` (docs/actions.md).
 */
import type { Command } from 'commander';
import { DroverError } from '../../core/errors.js';
import { call, print } from '../http.js';

function json(what: string, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new DroverError('validation', `${what}: not JSON: ${text.slice(0, 80)}`);
  }
}

export function registerTriggerCommands(program: Command): void {
  const triggers = program.command('triggers').description('runtime triggers with built-in actions on a running node (DROVER_URL, DROVER_API_KEY; admin)');
  triggers.command('list').description('triggers (credentials redacted) and the breakers of their targets').action(async () => print(await call('GET', '/v1/triggers')));
  triggers
    .command('create')
    .description('create a trigger: events matching --on (and --filter) go to the --action')
    .requiredOption('--on <pattern>', 'event pattern, e.g. "order.*"')
    .requiredOption('--action <json>', 'the action, e.g. \'{"type":"telegram","token":{"env":"DROVER_SECRET_TELEGRAM"},"chatId":42,"text":"{{data.orderId}}"}\'')
    .option('--filter <json>', 'a filter on the event data (docs/filters.md)')
    .action(async (opts: { on: string; action: string; filter?: string }) =>
      print(await call('POST', '/v1/triggers', { on: opts.on, action: json('--action', opts.action), ...(opts.filter === undefined ? {} : { filter: json('--filter', opts.filter) }) })),
    );
  triggers.command('delete <id>').description('delete a trigger').action(async (id: string) => print(await call('DELETE', `/v1/triggers/${encodeURIComponent(id)}`)));
  triggers
    .command('rotate-secret <id>')
    .description('add a second signing secret to a webhook trigger (printed once)')
    .option('--secret <value>', 'the new secret (default: generated)')
    .action(async (id: string, opts: { secret?: string }) => print(await call('POST', `/v1/triggers/${encodeURIComponent(id)}/rotate-secret`, opts.secret ? { secret: opts.secret } : {})));
  triggers
    .command('retire-secret <id>')
    .description('stop signing a webhook trigger\'s deliveries with a secret (default: the oldest)')
    .option('--secret-id <id>', 'the secret to retire')
    .action(async (id: string, opts: { secretId?: string }) => print(await call('POST', `/v1/triggers/${encodeURIComponent(id)}/retire-secret`, opts.secretId ? { secretId: opts.secretId } : {})));
}
