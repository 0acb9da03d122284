/**
 * `drover gates list|set`: read and override feature gates on a running node
 * (DROVER_URL, DROVER_API_KEY); an override reaches every node sharing the
 * store within a few seconds.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { call } from '../http.js';

interface Gate {
  name: string;
  enabled: boolean;
  source: string;
  configured: boolean;
}

const line = (g: Gate) => `${g.name.padEnd(28)} ${g.enabled ? 'on ' : 'off'}  ${g.source === 'override' ? `override (config: ${g.configured ? 'on' : 'off'})` : g.source}`;

function value(text: string): boolean | null {
  if (text === 'on' || text === 'true') return true;
  if (text === 'off' || text === 'false') return false;
  if (text === 'default' || text === 'reset') return null;
  throw new InvalidArgumentError('expected on, off, or default (remove the override: back to the config value)');
}

export function registerGateCommands(program: Command): void {
  const gates = program.command('gates').description('feature gates of a running node (DROVER_URL, DROVER_API_KEY)');
  gates
    .command('list')
    .description('every gate with its value and where it comes from (built-in, config, override), and the release channel')
    .option('--json', 'print the answer as JSON')
    .action(async (opts: { json?: boolean }) => {
      const view = (await call('GET', '/v1/status/rollout')) as { channel: string; version: string; gates: Gate[] };
      if (opts.json) return void process.stdout.write(`${JSON.stringify(view, null, 2)}\n`);
      process.stdout.write(`channel ${view.channel} (drover ${view.version})\n`);
      for (const g of view.gates) process.stdout.write(`${line(g)}\n`);
    });
  gates
    .command('set <name> <value>')
    .description('turn a gate on or off on every node sharing the store (admin key; audited), or `default` to go back to the config value')
    .action(async (name: string, text: string) => {
      const gate = (await call('POST', `/v1/gates/${encodeURIComponent(name)}`, { enabled: value(text) })) as Gate;
      process.stdout.write(`${line(gate)}\n`);
    });
}
