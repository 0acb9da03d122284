import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DroverError } from '../../src/core/errors.js';
import { compilePattern, MAX_EVENT_NAME_LENGTH, validateEventName } from '../../src/core/trigger.js';

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

describe('compilePattern: matching', () => {
  const cases: Array<[string, string, boolean]> = [
    ['order.created', 'order.created', true],
    ['order.created', 'order.created.eu', false],
    ['order.created', 'order', false],
    ['order.created', 'Order.created', false], // case-sensitive
    ['order.*', 'order.created', true],
    ['order.*', 'order', false], // * is exactly one segment
    ['order.*', 'order.created.eu', false],
    ['*.created', 'invoice.created', true],
    ['*', 'anything', true],
    ['*', 'a.b', false],
    ['*.*', 'a.b', true],
    ['order.**', 'order', true], // ** is zero or more
    ['order.**', 'order.created', true],
    ['order.**', 'order.created.eu.west', true],
    ['order.**', 'orders.created', false],
    ['**', 'a', true],
    ['**', 'a.b.c', true],
    ['**.failed', 'failed', true],
    ['**.failed', 'job.x.failed', true],
    ['**.failed', 'job.failed.not', false],
    ['a.**.z', 'a.z', true],
    ['a.**.z', 'a.b.c.z', true],
    ['a.**.z', 'a.b.c', false],
    ['a.**.*.z', 'a.z', false],
    ['a.**.*.z', 'a.b.z', true],
    ['a.**.**.z', 'a.z', true],
    ['a.*.**', 'a', false],
    ['a.*.**', 'a.b', true],
    ['**.b.**', 'x.b.y', true],
    ['**.b.**', 'x.c.y', false],
    ['billing:v2.invoice-paid', 'billing:v2.invoice-paid', true],
    ['user_events.*', 'user_events.sign-up', true],
  ];
  it.each(cases)('%s vs %s → %s', (pattern, name, expected) => {
    expect(compilePattern(pattern)(name)).toBe(expected);
  });

  it('agrees with a naive recursive matcher', () => {
    const naive = (p: string[], n: string[]): boolean => {
      if (p.length === 0) return n.length === 0;
      const [head, ...rest] = p;
      if (head === '**') return naive(rest, n) || (n.length > 0 && naive(p, n.slice(1)));
      return n.length > 0 && (head === '*' || head === n[0]) && naive(rest, n.slice(1));
    };
    const seg = fc.constantFrom('a', 'b', 'c');
    const patSeg = fc.constantFrom('a', 'b', '*', '**');
    fc.assert(
      fc.property(fc.array(patSeg, { minLength: 1, maxLength: 6 }), fc.array(seg, { minLength: 1, maxLength: 7 }), (p, n) => {
        return compilePattern(p.join('.'))(n.join('.')) === naive(p, n);
      }),
      { numRuns: 2000 },
    );
  });

  it('stays fast with many ** against a long name (no exponential backtracking)', () => {
    const pattern = Array.from({ length: 30 }, () => '**.x').join('.').slice(0, 199);
    const name = Array.from({ length: 99 }, () => 'x').join('.') + '.y';
    const started = performance.now();
    compilePattern(pattern)(name);
    expect(performance.now() - started).toBeLessThan(200);
  });
});

describe('compilePattern: validation', () => {
  it('rejects empty and over-long patterns', () => {
    expect(validationError(() => compilePattern('')).message).toBe('event pattern "": must not be empty');
    expect(() => compilePattern('a'.repeat(MAX_EVENT_NAME_LENGTH))).not.toThrow();
    expect(validationError(() => compilePattern('a'.repeat(MAX_EVENT_NAME_LENGTH + 1))).message).toMatch(/201 characters long; at most 200 allowed/);
  });

  it('rejects empty segments', () => {
    for (const p of ['.a', 'a.', 'a..b', '.']) {
      expect(validationError(() => compilePattern(p)).message).toMatch(/segment \d is empty/);
    }
  });

  it('requires wildcards to be whole segments', () => {
    for (const p of ['order*', 'order.*x', 'a.***', 'a.*b*']) {
      expect(validationError(() => compilePattern(p)).message).toMatch(/must be a whole segment/);
    }
  });

  it('rejects characters outside the allowed set, naming the set', () => {
    for (const p of ['order created', 'order/created', 'ordér', 'a.b?', 'a.$']) {
      const e = validationError(() => compilePattern(p));
      expect(e.message).toMatch(/character outside the allowed set; allowed: letters, digits, "_", "-", ":"/);
    }
  });

  it('rejects a non-string', () => {
    expect(validationError(() => compilePattern(5 as unknown as string)).message).toMatch(/expected a string/);
  });
});

describe('validateEventName', () => {
  it('returns valid names unchanged', () => {
    for (const n of ['a', 'order.created', 'billing:v2.invoice-paid', 'x_y.Z-1', 'a'.repeat(200)]) expect(validateEventName(n)).toBe(n);
  });

  it('rejects wildcards', () => {
    for (const n of ['order.*', '**', 'a.**.b', 'order*']) {
      expect(validationError(() => validateEventName(n)).message).toMatch(/wildcards .* only in trigger patterns/);
    }
  });

  it('rejects non-strings, empty, too long, empty segments and bad characters', () => {
    expect(validationError(() => validateEventName(undefined)).message).toBe('event name: expected a string, got undefined');
    expect(validationError(() => validateEventName(null)).message).toBe('event name: expected a string, got null');
    expect(validationError(() => validateEventName(42)).message).toMatch(/got number/);
    expect(validationError(() => validateEventName('')).message).toMatch(/must not be empty/);
    expect(validationError(() => validateEventName('a'.repeat(201))).message).toMatch(/at most 200/);
    expect(validationError(() => validateEventName('a..b')).message).toMatch(/segment 2 is empty/);
    expect(validationError(() => validateEventName('a b')).message).toMatch(/outside the allowed set/);
    expect(validationError(() => validateEventName('a\nb')).message).toMatch(/outside the allowed set/);
  });

  it('accepts exactly the names that a literal pattern of the same text matches', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z_:-]{1,5}(\.[a-z0-9]{1,5}){0,3}$/), (name) => {
        return validateEventName(name) === name && compilePattern(name)(name) && compilePattern('**')(name);
      }),
    );
  });
});
