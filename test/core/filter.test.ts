import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DroverError } from '../../src/core/errors.js';
import { compileFilter, deepEqual, lookupPath, MAX_FILTER_DEPTH, MAX_FILTER_NODES } from '../../src/core/filter.js';

const match = (filter: unknown, data: unknown) => compileFilter(filter)(data);

function validationError(filter: unknown, where?: string): DroverError {
  try {
    compileFilter(filter, where);
  } catch (error) {
    expect(error).toBeInstanceOf(DroverError);
    expect((error as DroverError).code).toBe('validation');
    return error as DroverError;
  }
  throw new Error('expected compileFilter to throw');
}

describe('compileFilter: equality', () => {
  it('matches everything with an empty filter, whatever the data', () => {
    for (const data of [{}, null, 5, 'x', [], { a: 1 }, undefined]) expect(match({}, data)).toBe(true);
  });

  it('compares scalars strictly (no coercion)', () => {
    expect(match({ amount: 100 }, { amount: 100 })).toBe(true);
    expect(match({ amount: 100 }, { amount: '100' })).toBe(false);
    expect(match({ flag: true }, { flag: 1 })).toBe(false);
    expect(match({ v: null }, { v: null })).toBe(true);
  });

  it('does not treat a missing field as null (use $exists)', () => {
    expect(match({ v: null }, {})).toBe(false);
    expect(match({ v: { $exists: false } }, {})).toBe(true);
  });

  it('follows dotted paths into nested objects', () => {
    const data = { customer: { country: 'DE', address: { zip: '10115' } } };
    expect(match({ 'customer.country': 'DE' }, data)).toBe(true);
    expect(match({ 'customer.address.zip': '10115' }, data)).toBe(true);
    expect(match({ 'customer.country': 'FR' }, data)).toBe(false);
    expect(match({ 'customer.missing.deeper': 'x' }, data)).toBe(false);
    expect(match({ 'customer.country.length': 2 }, data)).toBe(false); // no walking into strings
  });

  it('indexes arrays with numeric segments only', () => {
    const data = { items: [{ sku: 'a' }, { sku: 'b' }] };
    expect(match({ 'items.1.sku': 'b' }, data)).toBe(true);
    expect(match({ 'items.2.sku': 'b' }, data)).toBe(false);
    expect(match({ 'items.length': 2 }, data)).toBe(false);
    expect(match({ 'items.01.sku': 'b' }, data)).toBe(false);
    expect(match({ 'items.sku': 'a' }, data)).toBe(false); // no implicit array traversal
  });

  it('uses deep equality for object and array literals, ignoring key order', () => {
    expect(match({ tags: ['a', 'b'] }, { tags: ['a', 'b'] })).toBe(true);
    expect(match({ tags: ['a', 'b'] }, { tags: ['b', 'a'] })).toBe(false);
    expect(match({ tags: ['a'] }, { tags: ['a', 'b'] })).toBe(false);
    expect(match({ meta: { x: 1, y: [1, { z: 2 }] } }, { meta: { y: [1, { z: 2 }], x: 1 } })).toBe(true);
    expect(match({ meta: { x: 1 } }, { meta: { x: 1, y: 2 } })).toBe(false);
    expect(match({ meta: {} }, { meta: {} })).toBe(true);
    expect(match({ meta: {} }, { meta: [] })).toBe(false);
  });

  it('requires every field condition to hold (implicit and)', () => {
    const f = { a: 1, b: 2 };
    expect(match(f, { a: 1, b: 2 })).toBe(true);
    expect(match(f, { a: 1, b: 3 })).toBe(false);
  });

  it('never matches field conditions against non-object data', () => {
    for (const data of [null, undefined, 5, 'amount', true]) expect(match({ amount: { $exists: true } }, data)).toBe(false);
  });

  it('only reads own properties (no prototype access)', () => {
    expect(match({ constructor: { $exists: true } }, {})).toBe(false);
    expect(match({ 'toString.name': 'toString' }, {})).toBe(false);
    // An object literal's __proto__ sets the prototype: not a plain object, so not a filter.
    expect(validationError({ __proto__: { $exists: true } }).message).toMatch(/non-standard prototype/);
    const parsed = JSON.parse('{"__proto__": {"polluted": 1}}') as unknown;
    expect(match(JSON.parse('{"__proto__.polluted": 1}'), parsed)).toBe(true); // own key from JSON.parse is data
    expect(match(JSON.parse('{"__proto__.polluted": 1}'), {})).toBe(false);
  });
});

describe('compileFilter: operators', () => {
  it('$eq and $ne', () => {
    expect(match({ s: { $eq: 'x' } }, { s: 'x' })).toBe(true);
    expect(match({ s: { $eq: { a: [1] } } }, { s: { a: [1] } })).toBe(true);
    expect(match({ s: { $ne: 'x' } }, { s: 'y' })).toBe(true);
    expect(match({ s: { $ne: 'x' } }, { s: 'x' })).toBe(false);
    expect(match({ s: { $ne: 'x' } }, {})).toBe(true); // missing is "not equal"
    expect(match({ s: { $eq: null } }, {})).toBe(false);
  });

  it('$gt $gte $lt $lte on numbers', () => {
    const d = { n: 100 };
    expect(match({ n: { $gt: 99 } }, d)).toBe(true);
    expect(match({ n: { $gt: 100 } }, d)).toBe(false);
    expect(match({ n: { $gte: 100 } }, d)).toBe(true);
    expect(match({ n: { $lt: 100 } }, d)).toBe(false);
    expect(match({ n: { $lte: 100 } }, d)).toBe(true);
    expect(match({ n: { $gt: 10, $lt: 200 } }, d)).toBe(true);
    expect(match({ n: { $gt: 10, $lt: 50 } }, d)).toBe(false);
  });

  it('compares strings with strings (code unit order) and never mixes types', () => {
    expect(match({ d: { $gte: '2024-01-01' } }, { d: '2024-06-30' })).toBe(true);
    expect(match({ d: { $lt: '2024-01-01' } }, { d: '2024-06-30' })).toBe(false);
    expect(match({ n: { $gt: 9 } }, { n: '10' })).toBe(false);
    expect(match({ n: { $lt: '9' } }, { n: 10 })).toBe(false);
    expect(match({ n: { $gt: 0 } }, { n: null })).toBe(false);
    expect(match({ n: { $lt: 0 } }, {})).toBe(false);
    expect(match({ n: { $gt: 0 } }, { n: [5] })).toBe(false);
  });

  it('$in and $nin with deep equality', () => {
    expect(match({ c: { $in: ['DE', 'AT'] } }, { c: 'AT' })).toBe(true);
    expect(match({ c: { $in: ['DE', 'AT'] } }, { c: 'FR' })).toBe(false);
    expect(match({ c: { $in: [] } }, { c: 'FR' })).toBe(false);
    expect(match({ c: { $in: [{ a: 1 }] } }, { c: { a: 1 } })).toBe(true);
    expect(match({ c: { $in: [null] } }, {})).toBe(false);
    expect(match({ c: { $nin: ['DE'] } }, { c: 'FR' })).toBe(true);
    expect(match({ c: { $nin: ['DE'] } }, { c: 'DE' })).toBe(false);
    expect(match({ c: { $nin: ['DE'] } }, {})).toBe(true);
    expect(match({ c: { $nin: [] } }, { c: 1 })).toBe(true);
  });

  it('$exists', () => {
    expect(match({ a: { $exists: true } }, { a: null })).toBe(true);
    expect(match({ a: { $exists: true } }, { a: 0 })).toBe(true);
    expect(match({ a: { $exists: true } }, {})).toBe(false);
    expect(match({ a: { $exists: false } }, {})).toBe(true);
    expect(match({ a: { $exists: false } }, { a: false })).toBe(false);
    expect(match({ 'a.b': { $exists: true } }, { a: { b: undefined } })).toBe(false);
  });
});

describe('compileFilter: logic', () => {
  it('$or, $and, $not and their nesting', () => {
    const f = {
      $or: [{ amount: { $gt: 1000 } }, { 'customer.vip': true }],
      $not: { 'customer.country': { $in: ['XX'] } },
      $and: [{ currency: 'EUR' }, { amount: { $gt: 0 } }],
    };
    const m = compileFilter(f);
    expect(m({ amount: 5000, currency: 'EUR', customer: { country: 'DE' } })).toBe(true);
    expect(m({ amount: 5, currency: 'EUR', customer: { country: 'DE', vip: true } })).toBe(true);
    expect(m({ amount: 5, currency: 'EUR', customer: { country: 'DE' } })).toBe(false); // $or fails
    expect(m({ amount: 5000, currency: 'EUR', customer: { country: 'XX' } })).toBe(false); // $not fails
    expect(m({ amount: 5000, currency: 'USD', customer: { country: 'DE' } })).toBe(false); // $and fails
  });

  it('$not of an empty condition matches nothing', () => {
    expect(match({ $not: {} }, { a: 1 })).toBe(false);
  });

  it('nested $or inside $and inside $not', () => {
    const f = { $not: { $and: [{ a: 1 }, { $or: [{ b: 1 }, { c: 1 }] }] } };
    expect(match(f, { a: 1, b: 1 })).toBe(false);
    expect(match(f, { a: 1 })).toBe(true);
    expect(match(f, { b: 1 })).toBe(true);
  });
});

describe('compileFilter: validation', () => {
  it('names the path, the bad operator and what is allowed', () => {
    const e = validationError({ amount: { $regex: '^1' } });
    expect(e.message).toBe('filter.amount: unknown operator "$regex"; allowed: $eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, $exists');
    expect(e.extensions).toMatchObject({ path: 'filter.amount' });
  });

  it('uses the caller-supplied location in messages', () => {
    const e = validationError({ $or: [{ a: 1 }, { b: { $where: 'x' } }] }, 'handlers[2].on.filter');
    expect(e.message).toMatch(/^handlers\[2\]\.on\.filter\.\$or\[1\]\.b: unknown operator "\$where"/);
  });

  it('rejects unknown logical operators at the top, hinting at field operators', () => {
    expect(validationError({ $nor: [] }).message).toMatch(/^filter\.\$nor: unknown logical operator "\$nor".*allowed here: \$and, \$or, \$not/);
    expect(validationError({ $gt: 5 }).message).toMatch(/\$gt applies to a field/);
  });

  it('rejects field-level logical operators', () => {
    expect(validationError({ a: { $or: [1] } }).message).toMatch(/^filter\.a: unknown operator "\$or"/);
  });

  it('rejects malformed operands', () => {
    expect(validationError({ $or: [] }).message).toMatch(/^filter\.\$or: \$or expects a non-empty array of conditions, got \[\]/);
    expect(validationError({ $and: {} }).message).toMatch(/^filter\.\$and: \$and expects a non-empty array/);
    expect(validationError({ $or: [5] }).message).toMatch(/^filter\.\$or\[0\]: expected an object of conditions, got 5/);
    expect(validationError({ $not: [] }).message).toMatch(/^filter\.\$not: expected an object of conditions/);
    expect(validationError({ a: { $gt: {} } }).message).toMatch(/^filter\.a\.\$gt: \$gt expects a finite number or a string, got \{\}/);
    expect(validationError({ a: { $lte: null } }).message).toMatch(/\$lte expects a finite number or a string/);
    expect(validationError({ a: { $gt: Infinity } }).message).toMatch(/\$gt expects a finite number/);
    expect(validationError({ a: { $in: 'DE' } }).message).toMatch(/^filter\.a\.\$in: \$in expects an array of values, got "DE"/);
    expect(validationError({ a: { $nin: 1 } }).message).toMatch(/\$nin expects an array/);
    expect(validationError({ a: { $exists: 1 } }).message).toMatch(/^filter\.a\.\$exists: \$exists expects true or false, got 1/);
  });

  it('rejects mixing operators with plain keys', () => {
    expect(validationError({ a: { $gt: 1, b: 2 } }).message).toMatch(/^filter\.a: mixes operators \(\$gt\) with plain keys/);
  });

  it('rejects empty path segments', () => {
    expect(validationError({ 'a..b': 1 }).message).toMatch(/^filter\.a\.\.b: field path has an empty segment/);
    expect(validationError({ '': 1 }).message).toMatch(/empty segment/);
  });

  it('rejects a filter that is not a plain object', () => {
    for (const bad of [null, 5, 'a', [], [{ a: 1 }], new Date(0), undefined]) {
      expect(validationError(bad).message).toMatch(/^filter: expected an object of conditions/);
    }
  });

  it('rejects literals that are not JSON values', () => {
    expect(validationError({ a: () => 1 }).message).toBe('filter.a: expected a JSON value (null, boolean, number, string, array or object), got a function');
    expect(validationError({ a: new Date(0) }).message).toMatch(/^filter\.a: .*got an instance of Date/);
    expect(validationError({ a: NaN }).message).toMatch(/^filter\.a: expected a JSON value, got NaN/);
    expect(validationError({ a: undefined }).message).toMatch(/got undefined/);
    expect(validationError({ a: { b: [1, 2n] } }).message).toMatch(/^filter\.a\.b\[1\]: .*got 2n/);
    expect(validationError({ a: { $in: [1, Symbol('s')] } }).message).toMatch(/^filter\.a\.\$in\[1\]: .*a symbol/);
  });

  it(`bounds nesting depth at ${MAX_FILTER_DEPTH}`, () => {
    let ok: Record<string, unknown> = { a: 1 };
    for (let i = 0; i < MAX_FILTER_DEPTH - 2; i++) ok = { $not: ok };
    expect(() => compileFilter(ok)).not.toThrow();
    const tooDeep = { $not: ok };
    expect(validationError(tooDeep).message).toMatch(/nested too deeply \(more than 16 levels\)/);

    let literal: unknown = 1;
    for (let i = 0; i < 40; i++) literal = [literal];
    expect(validationError({ a: literal }).message).toMatch(/nested too deeply/);
  });

  it('rejects cyclic filters instead of recursing forever', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(validationError({ a: cyclic }).message).toMatch(/nested too deeply/);
  });

  it(`bounds size at ${MAX_FILTER_NODES} values`, () => {
    const big = { a: { $in: Array.from({ length: MAX_FILTER_NODES + 1 }, (_, i) => i) } };
    expect(validationError(big).message).toMatch(/too large \(more than 1000 values\)/);
    const fits = { a: { $in: Array.from({ length: 500 }, (_, i) => i) } };
    expect(compileFilter(fits)({ a: 499 })).toBe(true);
  });
});

describe('compileFilter: robustness', () => {
  const json = fc.jsonValue({ maxDepth: 4 });

  it('a compiled filter never throws, whatever the data', () => {
    const m = compileFilter({
      'a.b': { $gt: 1, $lt: 'z', $in: [1, 'x', null, { k: [1] }] },
      $or: [{ c: { $exists: true } }, { $not: { d: [1, 2] } }],
      e: { $ne: { x: 1 } },
    });
    fc.assert(fc.property(json, (data) => typeof m(data) === 'boolean'));
  });

  it('any input either compiles to a total predicate or fails with a validation error', () => {
    fc.assert(
      fc.property(json, json, (filter, data) => {
        let m: ((d: unknown) => boolean) | undefined;
        try {
          m = compileFilter(filter);
        } catch (error) {
          return error instanceof DroverError && error.code === 'validation';
        }
        return typeof m(data) === 'boolean';
      }),
    );
  });

  it('a literal always matches itself at its own path', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 3 }), (value) => {
        // Objects whose keys start with $ are operator objects, not literals.
        fc.pre(!(typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).some((k) => k.startsWith('$'))));
        return compileFilter({ v: value })({ v: value }) === true;
      }),
    );
  });
});

describe('helpers', () => {
  it('deepEqual', () => {
    expect(deepEqual({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] })).toBe(true);
    expect(deepEqual({ a: 1 }, { b: 1 })).toBe(false);
    expect(deepEqual([1], { 0: 1 })).toBe(false);
    expect(deepEqual(null, {})).toBe(false);
    expect(deepEqual(0, -0)).toBe(true);
  });

  it('lookupPath', () => {
    expect(lookupPath({ a: [{ b: 'x' }] }, ['a', '0', 'b'])).toEqual({ present: true, value: 'x' });
    expect(lookupPath({ a: null }, ['a'])).toEqual({ present: true, value: null });
    expect(lookupPath({ a: null }, ['a', 'b'])).toEqual({ present: false, value: undefined });
    expect(lookupPath({}, ['hasOwnProperty'])).toEqual({ present: false, value: undefined });
    expect(lookupPath('str', [])).toEqual({ present: true, value: 'str' });
  });
});
