import { describe, expect, it } from 'vitest';
import { compileCron, cronTicksBetween, isValidTimezone } from '../../src/core/cron.js';
import { DroverError } from '../../src/core/errors.js';

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();

function validationError(fn: () => unknown): DroverError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(DroverError);
    expect((error as DroverError).code).toBe('validation');
    return error as DroverError;
  }
  throw new Error('expected a validation error');
}

describe('compileCron', () => {
  it('returns the first tick strictly after the given time (5 fields, UTC by default)', () => {
    const every5 = compileCron('*/5 * * * *');
    expect(iso(every5.next(at('2024-01-01T00:00:00Z')))).toBe('2024-01-01T00:05:00.000Z'); // on a tick: the next one
    expect(iso(every5.next(at('2024-01-01T00:04:59.999Z')))).toBe('2024-01-01T00:05:00.000Z');
    expect(iso(every5.next(at('2024-01-01T00:00:00.001Z')))).toBe('2024-01-01T00:05:00.000Z');
  });

  it('supports a leading seconds field (6 fields)', () => {
    const c = compileCron('*/10 * * * * *');
    expect(iso(c.next(at('2024-01-01T00:00:00.500Z')))).toBe('2024-01-01T00:00:10.000Z');
  });

  it('supports aliases, L and #', () => {
    expect(iso(compileCron('@daily').next(at('2024-01-01T12:00:00Z')))).toBe('2024-01-02T00:00:00.000Z');
    expect(iso(compileCron('0 0 L * *').next(at('2024-02-01T00:00:00Z')))).toBe('2024-02-29T00:00:00.000Z');
    expect(iso(compileCron('0 9 * * 1#1').next(at('2024-01-01T12:00:00Z')))).toBe('2024-02-05T09:00:00.000Z');
  });

  it('interprets fields in the given time zone, across DST', () => {
    const nineBerlin = compileCron('0 9 * * *', 'Europe/Berlin');
    expect(iso(nineBerlin.next(at('2024-01-15T00:00:00Z')))).toBe('2024-01-15T08:00:00.000Z'); // CET, UTC+1
    expect(iso(nineBerlin.next(at('2024-07-15T00:00:00Z')))).toBe('2024-07-15T07:00:00.000Z'); // CEST, UTC+2
    const ny = compileCron('30 12 * * *', 'America/New_York');
    expect(iso(ny.next(at('2024-03-09T12:00:00Z')))).toBe('2024-03-09T17:30:00.000Z');
    expect(iso(ny.next(at('2024-03-10T12:00:00Z')))).toBe('2024-03-10T16:30:00.000Z');
  });

  it('is reusable: calls do not disturb each other', () => {
    const hourly = compileCron('0 * * * *');
    const a = hourly.next(at('2024-01-01T05:30:00Z'));
    const b = hourly.next(at('2023-06-01T00:10:00Z'));
    expect(iso(a)).toBe('2024-01-01T06:00:00.000Z');
    expect(iso(b)).toBe('2023-06-01T01:00:00.000Z');
    expect(hourly.next(at('2024-01-01T05:30:00Z'))).toBe(a);
  });

  it('gives H fields the same value every time (all nodes agree)', () => {
    const one = compileCron('H * * * *').next(0);
    const two = compileCron('H * * * *').next(0);
    expect(one).toBe(two);
  });

  it('rejects a non-finite "after"', () => {
    expect(() => compileCron('* * * * *').next(NaN)).toThrow(RangeError);
  });

  it('rejects bad expressions, quoting them', () => {
    expect(validationError(() => compileCron('')).message).toBe('cron expression "": must not be empty');
    expect(validationError(() => compileCron('   ')).message).toMatch(/must not be empty/);
    expect(validationError(() => compileCron('61 * * * *')).message).toMatch(/^cron expression "61 \* \* \* \*": .*61/);
    expect(validationError(() => compileCron('* * * * * * *')).message).toMatch(/^cron expression "\* \* \* \* \* \* \*": .*too many fields/);
    expect(validationError(() => compileCron('every day')).message).toMatch(/^cron expression "every day"/);
    expect(validationError(() => compileCron('0 0 31 2 *')).message).toMatch(/^cron expression "0 0 31 2 \*"/);
    expect(validationError(() => compileCron('@reboot')).message).toMatch(/^cron expression "@reboot"/);
    expect(validationError(() => compileCron('*/0 * * * *')).message).toMatch(/^cron expression/);
    expect(validationError(() => compileCron('*'.repeat(201))).message).toMatch(/longer than 200/);
  });

  it('rejects unknown time zones up front, naming them', () => {
    const e = validationError(() => compileCron('0 9 * * *', 'Mars/Olympus'));
    expect(e.message).toBe('cron expression "0 9 * * *": unknown time zone "Mars/Olympus"; expected an IANA name such as "UTC" or "Europe/Berlin"');
    expect(() => compileCron('0 9 * * *', '')).toThrow(/unknown time zone/);
  });
});

describe('cronTicksBetween', () => {
  const from = at('2024-01-01T00:00:00Z');
  it('lists ticks in (from, to], earliest first', () => {
    const ticks = cronTicksBetween('0 * * * *', 'UTC', from, at('2024-01-01T03:00:00Z'), 100);
    expect(ticks.map(iso)).toEqual(['2024-01-01T01:00:00.000Z', '2024-01-01T02:00:00.000Z', '2024-01-01T03:00:00.000Z']);
  });

  it('stops at max, keeping the earliest', () => {
    const ticks = cronTicksBetween('* * * * *', undefined, from, at('2024-01-02T00:00:00Z'), 3);
    expect(ticks.map(iso)).toEqual(['2024-01-01T00:01:00.000Z', '2024-01-01T00:02:00.000Z', '2024-01-01T00:03:00.000Z']);
    expect(cronTicksBetween('* * * * *', 'UTC', from, at('2024-01-02T00:00:00Z'), 0)).toEqual([]);
  });

  it('is empty when no tick falls in the window, or the window is empty', () => {
    expect(cronTicksBetween('0 0 * * *', 'UTC', from, at('2024-01-01T23:59:59Z'), 10)).toEqual([]);
    expect(cronTicksBetween('* * * * *', 'UTC', from, from, 10)).toEqual([]);
    expect(cronTicksBetween('* * * * *', 'UTC', from, from - 60_000, 10)).toEqual([]);
  });

  it('continues seamlessly from the last tick returned', () => {
    const to = at('2024-01-01T00:10:00Z');
    const first = cronTicksBetween('* * * * *', 'UTC', from, to, 4);
    const rest = cronTicksBetween('* * * * *', 'UTC', first.at(-1) ?? from, to, 100);
    expect([...first, ...rest]).toEqual(cronTicksBetween('* * * * *', 'UTC', from, to, 100));
    expect([...first, ...rest]).toHaveLength(10);
  });

  it('validates like compileCron', () => {
    expect(() => cronTicksBetween('nope', 'UTC', 0, 1, 1)).toThrow(DroverError);
  });
});

describe('isValidTimezone', () => {
  it('accepts IANA names and rejects the rest', () => {
    expect(isValidTimezone('UTC')).toBe(true);
    expect(isValidTimezone('Europe/Berlin')).toBe(true);
    expect(isValidTimezone('Asia/Kolkata')).toBe(true);
    expect(isValidTimezone('Mars/Olympus')).toBe(false);
    expect(isValidTimezone('')).toBe(false);
  });
});
