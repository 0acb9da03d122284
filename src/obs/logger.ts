/**
 * JSON logs on stdout (pino). Field names follow OPERATIONS.md: `request_id`,
 * `job_id`, `handler`, `queue`, `attempt`, `worker_id`, `err`.
 *
 * Logging never holds the process: stdout is written asynchronously, and
 * when its reader stops taking lines (a log shipper that hung, a pipe nobody
 * drains) they wait in memory up to `MAX_BUFFERED_BYTES`, beyond which new
 * lines are dropped and counted (`droppedLogLines`). At exit pino flushes
 * what is left synchronously; that flush retries a full pipe (EAGAIN) with a
 * blocking sleep, so it is bounded by `LOG_FLUSH_MS` and then gives up. A
 * reader that is gone altogether (EPIPE) ends logging at once.
 */
import { pino, destination, stdSerializers, stdTimeFunctions, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/** The longest the final flush at exit may block on a stdout nobody reads; part of the shutdown allowance. */
export const LOG_FLUSH_MS = 1_000;
/** Log bytes held while stdout takes none; lines past this are dropped. */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

let dropped = 0;

/** Log lines dropped because stdout did not take them (`drover_log_lines_dropped_total`). */
export function droppedLogLines(): number {
  return dropped;
}

export interface LoggerOptions {
  level: LevelWithSilent;
  /** Where to write; defaults to stdout. Tests pass a stream to capture lines. */
  destination?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { pid: process.pid },
      timestamp: stdTimeFunctions.isoTime,
      messageKey: 'msg',
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: stdSerializers.err },
    },
    options.destination ?? stdoutDestination(),
  );
}

function stdoutDestination(): ReturnType<typeof destination> {
  // Retry a full pipe for as long as it takes while running (the retries are
  // timers, nothing blocks); during the final flush only until its deadline.
  let giveUpAt = Number.POSITIVE_INFINITY;
  const stream = destination({ dest: 1, sync: false, maxLength: MAX_BUFFERED_BYTES, retryEAGAIN: () => Date.now() < giveUpAt });
  stream.on('drop', (data: string | Buffer) => {
    dropped += countLines(data);
  });
  // pino calls flushSync from its exit handler (and on a fatal log); sonic-boom's
  // loops on EAGAIN, sleeping 100 ms a round, for as long as the reader stalls.
  const flushSync = stream.flushSync.bind(stream);
  stream.flushSync = () => {
    giveUpAt = Date.now() + LOG_FLUSH_MS;
    try {
      flushSync();
    } catch {
      // Gave up (or the stream was already closed): what is left is lost, the process exits regardless.
    } finally {
      giveUpAt = Number.POSITIVE_INFINITY;
    }
  };
  return stream;
}

function countLines(data: string | Buffer): number {
  let n = 0;
  if (typeof data === 'string') {
    for (let i = data.indexOf('\n'); i >= 0; i = data.indexOf('\n', i + 1)) n++;
  } else {
    for (let i = data.indexOf(10); i >= 0; i = data.indexOf(10, i + 1)) n++;
  }
  return Math.max(n, 1);
}
