/**
 * JSON logs on stdout (pino). Field names follow OPERATIONS.md: `request_id`,
 * `job_id`, `handler`, `queue`, `attempt`, `worker_id`, `err`.
 */
import { pino, destination, stdSerializers, stdTimeFunctions, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

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
    options.destination ?? destination({ dest: 1, sync: false }),
  );
}
