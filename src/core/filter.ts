/**
 * The trigger filter language: a small, Mongo-like subset of JSON conditions
 * over an event's `data`. It is compiled once (at config load) into a tree of
 * closures; matching never throws, never evaluates user code and never builds
 * a regular expression from user input, so a filter cannot hang the dispatcher.
 * The language is documented in `docs/filters.md`.
 */
import { DroverError } from './errors.js';

/** A filter as users write it: field paths and `$and`/`$or`/`$not` at the top. */
export type Filter = Record<string, unknown>;

/** A compiled filter: true when the data matches. */
export type FilterPredicate = (data: unknown) => boolean;

/** Deepest nesting (of conditions and of literal values) a filter may have. */
export const MAX_FILTER_DEPTH = 16;
/** Most values (conditions, operands, literal members) a filter may hold. */
export const MAX_FILTER_NODES = 1000;

export const FIELD_OPERATORS = ['$eq', '$ne', '$gt', '$gte', '$lt', '$lte', '$in', '$nin', '$exists'] as const;
export const LOGICAL_OPERATORS = ['$and', '$or', '$not'] as const;

type FieldOperator = (typeof FIELD_OPERATORS)[number];
type Test = (value: unknown, present: boolean) => boolean;

const FIELD_OPERATOR_LIST = FIELD_OPERATORS.join(', ');
const LOGICAL_OPERATOR_LIST = LOGICAL_OPERATORS.join(', ');

/**
 * Validate a filter and compile it into a predicate. Throws
 * `DroverError('validation')` naming the offending path and what is allowed.
 *
 * @param filter the filter as written (any value; it is validated here)
 * @param where how to name the filter in error messages, e.g. `handlers[0].on.filter`
 * @example
 * const matches = compileFilter({ amount: { $gt: 100 }, 'customer.country': 'DE' });
 * matches({ amount: 250, customer: { country: 'DE' } }); // true
 * compileFilter({ amount: { $regex: 'x' } }); // throws: filter.amount: unknown operator "$regex"; allowed: $eq, …
 */
export function compileFilter(filter: unknown, where = 'filter'): FilterPredicate {
  const budget = { nodes: 0 };
  return compileCondition(filter, where, 1, budget);
}

interface Budget {
  nodes: number;
}

function fail(where: string, problem: string): never {
  throw new DroverError('validation', `${where}: ${problem}`, { extensions: { path: where, problem } });
}

function spend(budget: Budget, where: string, depth: number): void {
  budget.nodes += 1;
  if (budget.nodes > MAX_FILTER_NODES) fail(where, `filter is too large (more than ${MAX_FILTER_NODES} values)`);
  if (depth > MAX_FILTER_DEPTH) fail(where, `filter is nested too deeply (more than ${MAX_FILTER_DEPTH} levels)`);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** A condition: an object whose keys are field paths or logical operators, all of which must hold. */
function compileCondition(condition: unknown, where: string, depth: number, budget: Budget): FilterPredicate {
  spend(budget, where, depth);
  if (!isPlainObject(condition)) fail(where, `expected an object of conditions, got ${describe(condition)}`);
  const parts: FilterPredicate[] = [];
  for (const [key, operand] of Object.entries(condition)) {
    const at = `${where}.${key}`;
    if (key.startsWith('$')) parts.push(compileLogical(key, operand, at, depth + 1, budget));
    else parts.push(compileField(key, operand, at, depth + 1, budget));
  }
  return allOf(parts);
}

function compileLogical(op: string, operand: unknown, where: string, depth: number, budget: Budget): FilterPredicate {
  if (op === '$not') {
    const inner = compileCondition(operand, where, depth, budget);
    return (data) => !inner(data);
  }
  if (op === '$and' || op === '$or') {
    spend(budget, where, depth);
    if (!Array.isArray(operand) || operand.length === 0) {
      fail(where, `${op} expects a non-empty array of conditions, got ${describe(operand)}`);
    }
    const parts = operand.map((c, i) => compileCondition(c, `${where}[${i}]`, depth + 1, budget));
    return op === '$and' ? allOf(parts) : anyOf(parts);
  }
  const hint = isFieldOperator(op) ? ` (${op} applies to a field: { "field": { "${op}": … } })` : '';
  fail(where, `unknown logical operator "${op}" at the top of a condition${hint}; allowed here: ${LOGICAL_OPERATOR_LIST}`);
}

function compileField(path: string, operand: unknown, where: string, depth: number, budget: Budget): FilterPredicate {
  const segments = path.split('.');
  if (segments.some((s) => s === '')) fail(where, 'field path has an empty segment; write paths like "customer.country"');
  const get = (data: unknown) => lookupPath(data, segments);

  const test = isOperatorObject(operand, where)
    ? compileOperators(operand, where, depth, budget)
    : equalsTest(checkLiteral(operand, where, depth, budget));
  return (data) => {
    const found = get(data);
    return test(found.value, found.present);
  };
}

/**
 * `{ "$gt": 1 }` is an operator object; `{ "a": 1 }` is a literal to compare
 * with. Mixing the two is almost always a typo, so it is an error rather than
 * a silent literal comparison that never matches.
 */
function isOperatorObject(operand: unknown, where: string): operand is Record<string, unknown> {
  if (!isPlainObject(operand)) return false;
  const keys = Object.keys(operand);
  const ops = keys.filter((k) => k.startsWith('$'));
  if (ops.length === 0) return false;
  if (ops.length !== keys.length) {
    fail(where, `mixes operators (${ops.join(', ')}) with plain keys; use either operators or a literal object`);
  }
  return true;
}

function compileOperators(ops: Record<string, unknown>, where: string, depth: number, budget: Budget): Test {
  spend(budget, where, depth);
  const tests: Test[] = [];
  for (const [op, operand] of Object.entries(ops)) {
    const at = `${where}.${op}`;
    if (!isFieldOperator(op)) {
      fail(where, `unknown operator "${op}"; allowed: ${FIELD_OPERATOR_LIST}`);
    }
    tests.push(compileOperator(op, operand, at, depth + 1, budget));
  }
  return (value, present) => tests.every((t) => t(value, present));
}

function compileOperator(op: FieldOperator, operand: unknown, where: string, depth: number, budget: Budget): Test {
  switch (op) {
    case '$eq':
      return equalsTest(checkLiteral(operand, where, depth, budget));
    case '$ne': {
      const eq = equalsTest(checkLiteral(operand, where, depth, budget));
      // As in MongoDB, a missing field is "not equal" to anything.
      return (value, present) => !eq(value, present);
    }
    case '$gt':
    case '$gte':
    case '$lt':
    case '$lte': {
      spend(budget, where, depth);
      if (!(typeof operand === 'string' || (typeof operand === 'number' && Number.isFinite(operand)))) {
        fail(where, `${op} expects a finite number or a string, got ${describe(operand)}`);
      }
      const cmp = COMPARE[op];
      // Only like compares with like: 10 > "9" is false rather than coerced.
      return (value, present) => present && typeof value === typeof operand && cmp(value as never, operand as never);
    }
    case '$in':
    case '$nin': {
      spend(budget, where, depth);
      if (!Array.isArray(operand)) fail(where, `${op} expects an array of values, got ${describe(operand)}`);
      const options = operand.map((v, i) => equalsTest(checkLiteral(v, `${where}[${i}]`, depth + 1, budget)));
      const inList: Test = (value, present) => options.some((t) => t(value, present));
      return op === '$in' ? inList : (value, present) => !inList(value, present);
    }
    case '$exists': {
      spend(budget, where, depth);
      if (typeof operand !== 'boolean') fail(where, `$exists expects true or false, got ${describe(operand)}`);
      return (_value, present) => present === operand;
    }
  }
}

const COMPARE: Record<'$gt' | '$gte' | '$lt' | '$lte', (a: number | string, b: number | string) => boolean> = {
  $gt: (a, b) => a > b,
  $gte: (a, b) => a >= b,
  $lt: (a, b) => a < b,
  $lte: (a, b) => a <= b,
};

function isFieldOperator(op: string): op is FieldOperator {
  return (FIELD_OPERATORS as readonly string[]).includes(op);
}

/** Literals must be JSON values: event data is JSON, so nothing else could ever be equal to it. */
function checkLiteral(value: unknown, where: string, depth: number, budget: Budget): unknown {
  spend(budget, where, depth);
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) fail(where, `expected a JSON value, got ${String(value)}`);
    return value;
  }
  if (Array.isArray(value)) {
    value.forEach((v, i) => checkLiteral(v, `${where}[${i}]`, depth + 1, budget));
    return value;
  }
  if (isPlainObject(value)) {
    for (const [k, v] of Object.entries(value)) checkLiteral(v, `${where}.${k}`, depth + 1, budget);
    return value;
  }
  fail(where, `expected a JSON value (null, boolean, number, string, array or object), got ${describe(value)}`);
}

function equalsTest(literal: unknown): Test {
  return (value, present) => present && deepEqual(value, literal);
}

/**
 * Structural equality of JSON values; object key order does not matter.
 * Recursion is bounded by the literal's depth, which `checkLiteral` capped.
 */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((v, i) => deepEqual(v, b[i]));
  }
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const ka = Object.keys(ra);
  if (ka.length !== Object.keys(rb).length) return false;
  return ka.every((k) => Object.hasOwn(rb, k) && deepEqual(ra[k], rb[k]));
}

/**
 * Follow a path (segments of a dotted path) through own properties only, so
 * `__proto__` or `constructor` in a path can never reach into prototypes.
 * A numeric segment indexes an array. `present` is false when any step is missing.
 *
 * @example
 * lookupPath({ customer: { tags: ['vip'] } }, ['customer', 'tags', '0']); // { present: true, value: 'vip' }
 * lookupPath({}, ['toString']); // { present: false, value: undefined }
 */
export function lookupPath(data: unknown, segments: readonly string[]): { present: boolean; value: unknown } {
  let current: unknown = data;
  for (const segment of segments) {
    if (Array.isArray(current)) {
      if (!/^(0|[1-9][0-9]*)$/.test(segment)) return { present: false, value: undefined };
      const index = Number(segment);
      if (index >= current.length) return { present: false, value: undefined };
      current = current[index];
    } else if (typeof current === 'object' && current !== null && Object.hasOwn(current, segment)) {
      current = (current as Record<string, unknown>)[segment];
    } else {
      return { present: false, value: undefined };
    }
  }
  // A key holding `undefined` (possible from SDK callers, never from JSON) counts as missing.
  return current === undefined ? { present: false, value: undefined } : { present: true, value: current };
}

function allOf(parts: FilterPredicate[]): FilterPredicate {
  if (parts.length === 0) return () => true;
  if (parts.length === 1) return parts[0] as FilterPredicate;
  return (data) => parts.every((p) => p(data));
}

function anyOf(parts: FilterPredicate[]): FilterPredicate {
  return (data) => parts.some((p) => p(data));
}

function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'symbol') return 'a symbol';
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && !isPlainObject(value)) {
    const ctor = (value as { constructor?: { name?: unknown } }).constructor?.name;
    return typeof ctor === 'string' && ctor !== 'Object' ? `an instance of ${ctor}` : 'an object with a non-standard prototype';
  }
  try {
    const json = JSON.stringify(value);
    return json.length > 60 ? `${json.slice(0, 57)}...` : json;
  } catch {
    return String(value);
  }
}
