/**
 * `drover interrupts list|show|resume`: answer the questions durable jobs
 * ask (`ctx.step.interrupt`) on a running node over HTTP (DROVER_URL,
 * DROVER_API_KEY: a key with the `resume` scope, or admin). The input is
 * checked against the interrupt's JSON Schema by the node; a refusal prints
 * the field that failed.
 */
import type { Command } from 'commander';
import { call, print } from '../http.js';
import { readJsonOption } from './enqueue.js';

export function registerInterruptCommands(program: Command): void {
  const interrupts = program.command('interrupts').description('list, show and resume the interrupts of durable jobs on a running node (DROVER_URL, DROVER_API_KEY with scope resume)');
  interrupts
    .command('list')
    .description('interrupts, newest first (default: pending ones)')
    .option('--state <state>', 'pending, resumed, timed_out or cancelled', 'pending')
    .option('--handler <name>')
    .option('--limit <n>', 'page size', '50')
    .option('--cursor <id>', 'the nextCursor of the previous page')
    .action(async (opts: Record<string, string | undefined>) => {
      const query = new URLSearchParams(Object.entries(opts).filter((entry): entry is [string, string] => entry[1] !== undefined));
      print(await call('GET', `/v1/interrupts?${query}`));
    });
  interrupts
    .command('show <id>')
    .description('an interrupt: its prompt, the JSON Schema its input must satisfy, its state')
    .action(async (id: string) => print(await call('GET', `/v1/interrupts/${encodeURIComponent(id)}`)));
  interrupts
    .command('resume <id>')
    .description('resume a pending interrupt with JSON input; its job runs again (audited with your key)')
    .option('--input <json>', 'the input, as JSON')
    .option('--input-file <path>', 'read the JSON input from a file, or from standard input with -')
    .action(async (id: string, opts: { input?: string; inputFile?: string }) => {
      const input = readJsonOption({ what: 'input', inline: opts.input, file: opts.inputFile, inlineFlag: '--input', fileFlag: '--input-file' });
      print(await call('POST', `/v1/interrupts/${encodeURIComponent(id)}/resume`, { input }));
    });
}
