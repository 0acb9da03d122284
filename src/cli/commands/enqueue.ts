/**
 * `drover jobs enqueue <handler>`: every option POST /v1/jobs takes, and the
 * payload inline (--payload), from a file (--payload-file PATH) or from
 * standard input (--payload-file -).
 */
import { readFileSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { DroverError, toError } from '../../core/errors.js';
import { call, print } from '../http.js';

interface EnqueueOptions {
  payload?: string;
  payloadFile?: string;
  queue?: string;
  priority?: number;
  delay?: number;
  runAt?: string | number;
  idempotencyKey?: string;
  maxAttempts?: number;
  concurrencyKey?: string;
}

const integer = (what: string, min: number) => (value: string): number => {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`expected ${what} (an integer >= ${min}), got ${JSON.stringify(value)}`);
  return n;
};
const signedInteger = (value: string): number => {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`expected an integer, got ${JSON.stringify(value)}`);
  return n;
};
/** An ISO 8601 time as the API takes it, or epoch milliseconds. */
const instant = (value: string): string | number => {
  if (/^\d+$/.test(value)) return Number(value);
  if (Number.isNaN(Date.parse(value))) throw new InvalidArgumentError(`expected an ISO 8601 time (2030-01-01T00:00:00Z) or epoch milliseconds, got ${JSON.stringify(value)}`);
  return value;
};

function readPayload(opts: EnqueueOptions): unknown {
  return readJsonOption({ what: 'payload', inline: opts.payload, file: opts.payloadFile, inlineFlag: '--payload', fileFlag: '--payload-file', fallback: '{}' });
}

/**
 * A JSON value given inline (`--input '{...}'`) or in a file (`--input-file F`,
 * `-` for standard input): exactly one of them, or `fallback` when neither.
 *
 * @example
 * readJsonOption({ what: 'input', inline: '{"approve":true}', file: undefined, inlineFlag: '--input', fileFlag: '--input-file' }); // { approve: true }
 */
export function readJsonOption(o: { what: string; inline: string | undefined; file: string | undefined; inlineFlag: string; fileFlag: string; fallback?: string }): unknown {
  if (o.inline !== undefined && o.file !== undefined) throw new DroverError('validation', `pass either ${o.inlineFlag} or ${o.fileFlag}, not both`);
  if (o.inline === undefined && o.file === undefined && o.fallback === undefined) throw new DroverError('validation', `pass the ${o.what} as JSON with ${o.inlineFlag} or ${o.fileFlag} (- reads standard input)`);
  const [source, text] = o.file === undefined
    ? [o.inlineFlag, o.inline ?? o.fallback!]
    : [o.file === '-' ? 'standard input' : o.file, readSource(o.file, o.what)];
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new DroverError('validation', `the ${o.what} in ${source} is not JSON (${toError(error).message})`);
  }
}

function readSource(file: string, what: string): string {
  try {
    return readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (error) {
    throw new DroverError('validation', `cannot read the ${what} file ${file}: ${toError(error).message}`);
  }
}

export function registerEnqueueCommand(jobs: Command): void {
  jobs
    .command('enqueue <handler>')
    .description('enqueue a job for a handler (POST /v1/jobs); prints the job')
    .option('--payload <json>', 'JSON payload (default {})')
    .option('--payload-file <path>', 'read the JSON payload from a file, or from standard input with -')
    .option('--queue <name>', "queue (default: the handler's)")
    .option('--priority <n>', 'higher runs first (default 0)', signedInteger)
    .option('--delay <ms>', 'run no earlier than this many milliseconds from now', integer('milliseconds', 0))
    .option('--run-at <time>', 'run no earlier than this time (ISO 8601 or epoch milliseconds)', instant)
    .option('--idempotency-key <key>', 'the same key twice enqueues once; the second answer is the first job')
    .option('--max-attempts <n>', "attempts before the job is dead (default: the handler's retry policy)", integer('a number of attempts', 1))
    .option('--concurrency-key <key>', "the value of the handler's concurrency key for this job")
    .action(async (handler: string, opts: EnqueueOptions) => {
      const body = {
        handler,
        payload: readPayload(opts),
        ...(opts.queue !== undefined ? { queue: opts.queue } : {}),
        ...(opts.priority !== undefined ? { priority: opts.priority } : {}),
        ...(opts.delay !== undefined ? { delayMs: opts.delay } : {}),
        ...(opts.runAt !== undefined ? { runAt: opts.runAt } : {}),
        ...(opts.idempotencyKey !== undefined ? { idempotencyKey: opts.idempotencyKey } : {}),
        ...(opts.maxAttempts !== undefined ? { maxAttempts: opts.maxAttempts } : {}),
        ...(opts.concurrencyKey !== undefined ? { concurrencyKey: opts.concurrencyKey } : {}),
      };
      print(await call('POST', '/v1/jobs', body));
    });
}
