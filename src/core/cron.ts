/**
 * Cron schedules: a thin, validated wrapper over cron-parser v5.
 *
 * Expressions have 5 fields (minute hour day-of-month month day-of-week) or 6
 * (a leading seconds field); `@daily`-style aliases, `L`, `#` and `H` work as
 * cron-parser documents them. Times in and out are epoch milliseconds; the
 * time zone only decides which instants match ("09:00 in Europe/Berlin").
 */
import { createRequire } from 'node:module';
import type { CronExpression, CronExpressionParser as Parser } from 'cron-parser';
import { DroverError } from './errors.js';

/**
 * cron-parser (with luxon, ~0.5 MiB of source kept in the heap), required at the first schedule compiled:
 * a node whose config has no schedules never loads it (issue 24, worker RSS).
 */
let parser: typeof Parser | null = null;
const cronParser = (): typeof Parser => (parser ??= (createRequire(import.meta.url)('cron-parser') as { CronExpressionParser: typeof Parser }).CronExpressionParser);

/** A compiled cron schedule. */
export interface CronSchedule {
  /** The first tick strictly after `after`. Throws if the schedule has no further tick. */
  next(after: number): number;
  /** Ticks in (fromExclusive, toInclusive], earliest first, at most `max` of them. */
  between(fromExclusive: number, toInclusive: number, max: number): number[];
}

/**
 * Whether `timezone` is an IANA zone this runtime knows. Checked with `Intl`
 * because cron-parser only notices a bad zone on the first `next()`, with an
 * unhelpful message.
 *
 * @example
 * isValidTimezone('Europe/Berlin'); // true
 * isValidTimezone('Mars/Olympus'); // false
 */
export function isValidTimezone(timezone: string): boolean {
  if (timezone.length === 0) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
    return true;
  } catch {
    return false;
  }
}

/**
 * Validate a cron expression (and time zone, default `UTC`) and compile it.
 * Throws `DroverError('validation')` quoting the expression.
 *
 * `H` fields are seeded with the expression itself, so every node (and every
 * restart) picks the same minute — otherwise "once cluster-wide" would break.
 *
 * @example
 * const daily = compileCron('0 9 * * *', 'Europe/Berlin');
 * new Date(daily.next(Date.UTC(2024, 0, 1))).toISOString(); // '2024-01-01T08:00:00.000Z'
 */
export function compileCron(expr: string, timezone = 'UTC'): CronSchedule {
  const bad = (problem: string, cause?: unknown): never => {
    throw new DroverError('validation', `cron expression "${expr}": ${problem}`, cause === undefined ? {} : { cause });
  };
  if (typeof expr !== 'string') bad(`expected a string, got ${typeof expr}`);
  // cron-parser reads an empty expression as "every minute"; that is never what someone meant.
  if (expr.trim() === '') bad('must not be empty');
  if (expr.length > 200) bad('is longer than 200 characters');
  if (typeof timezone !== 'string' || !isValidTimezone(timezone)) {
    bad(`unknown time zone "${String(timezone)}"; expected an IANA name such as "UTC" or "Europe/Berlin"`);
  }

  let parsed: CronExpression | undefined;
  try {
    parsed = cronParser().parse(expr.trim(), { currentDate: 0, tz: timezone, hashSeed: expr.trim() });
    // Some impossible schedules only fail when iterated; find out now, not at 3 a.m.
    parsed.next();
  } catch (error) {
    bad(error instanceof Error ? error.message : String(error), error);
  }
  const cron = parsed as CronExpression;

  const next = (after: number): number => {
    if (!Number.isFinite(after)) throw new RangeError(`cron next(): "after" must be a finite number, got ${after}`);
    // Reusing one parsed expression is safe: reset + next run synchronously, nothing interleaves.
    cron.reset(new Date(after));
    return cron.next().getTime();
  };

  return {
    next,
    between(fromExclusive, toInclusive, max) {
      const ticks: number[] = [];
      let cursor = fromExclusive;
      while (ticks.length < max) {
        const tick = next(cursor);
        if (tick > toInclusive) break;
        ticks.push(tick);
        cursor = tick;
      }
      return ticks;
    },
  };
}

/**
 * Ticks of `expr` in (fromExclusive, toInclusive], earliest first, at most
 * `max`. The scheduler uses it to catch up after downtime without flooding:
 * it enqueues what it gets and continues from the last tick returned.
 *
 * @example
 * cronTicksBetween('0 * * * *', 'UTC', Date.UTC(2024, 0, 1, 0), Date.UTC(2024, 0, 1, 3), 10);
 * // [01:00, 02:00, 03:00] as epoch ms (00:00 itself is excluded)
 */
export function cronTicksBetween(
  expr: string,
  tz: string | undefined,
  fromExclusive: number,
  toInclusive: number,
  max: number,
): number[] {
  return compileCron(expr, tz).between(fromExclusive, toInclusive, max);
}
