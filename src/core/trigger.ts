/**
 * Event names and the patterns triggers use to match them.
 *
 * A name is segments separated by `.` (`order.created`, `billing:v2.invoice-paid`).
 * In a pattern, a `*` segment matches exactly one segment and a `**` segment
 * matches zero or more; every other segment is literal. Matching is a small
 * dynamic programme over segments (not a regex), so no pattern can backtrack
 * exponentially however many `**` it holds.
 */
import { DroverError } from './errors.js';

/** Longest event name or pattern, in characters. */
export const MAX_EVENT_NAME_LENGTH = 200;

const SEGMENT = /^[A-Za-z0-9_:-]+$/;
const ALLOWED = 'letters, digits, "_", "-", ":" in segments separated by "."';

/**
 * Validate an event name: 1–200 characters, non-empty segments of letters,
 * digits, `_`, `-`, `:` separated by `.`; no wildcards.
 * Throws `DroverError('validation')`; returns the name when valid.
 *
 * @example
 * validateEventName('order.created'); // 'order.created'
 * validateEventName('order.*'); // throws: wildcards are for patterns
 */
export function validateEventName(name: unknown): string {
  if (typeof name !== 'string') {
    throw new DroverError('validation', `event name: expected a string, got ${name === null ? 'null' : typeof name}`);
  }
  const problem = segmentProblem(name, false);
  if (problem !== null) throw new DroverError('validation', `event name "${clip(name)}": ${problem}`);
  return name;
}

/**
 * Validate an event-name pattern and compile it into a matcher.
 * Throws `DroverError('validation')` when the pattern is malformed.
 *
 * @example
 * const m = compilePattern('order.**');
 * m('order'); // true  (`**` matches zero segments)
 * m('order.created.eu'); // true
 * compilePattern('order.*')('order.created.eu'); // false (`*` is exactly one segment)
 */
export function compilePattern(pattern: string): (name: string) => boolean {
  if (typeof pattern !== 'string') {
    throw new DroverError('validation', `event pattern: expected a string, got ${typeof pattern}`);
  }
  const problem = segmentProblem(pattern, true);
  if (problem !== null) throw new DroverError('validation', `event pattern "${clip(pattern)}": ${problem}`);

  if (!pattern.includes('*')) return (name) => name === pattern;
  // Adjacent `**` segments mean the same as one; collapsing them keeps the table small.
  const parts = pattern.split('.').filter((s, i, all) => !(s === '**' && all[i - 1] === '**'));
  return (name) => matchSegments(parts, name.split('.'));
}

/**
 * What is wrong with a pattern, or null when it is well formed (for callers
 * that word their own error, such as a key's handler patterns).
 *
 * @example
 * patternProblem('billing.*'); // null
 * patternProblem('billing*'); // 'segment "billing*": "*" and "**" must be a whole segment ...'
 */
export function patternProblem(pattern: string): string | null {
  return segmentProblem(pattern, true);
}

/** Classic wildcard DP: reachable[j] = pattern prefix so far matches the first j name segments. */
function matchSegments(pattern: readonly string[], name: readonly string[]): boolean {
  let reachable: boolean[] = new Array<boolean>(name.length + 1).fill(false);
  reachable[0] = true;
  for (const part of pattern) {
    const next: boolean[] = new Array<boolean>(name.length + 1).fill(false);
    for (let j = 0; j <= name.length; j++) {
      if (part === '**') {
        // Zero segments (stay at j) or one more segment on top of any earlier reach.
        next[j] = reachable[j] === true || (j > 0 && next[j - 1] === true);
      } else if (j > 0 && reachable[j - 1] === true) {
        next[j] = part === '*' || part === name[j - 1];
      }
    }
    reachable = next;
  }
  return reachable[name.length] === true;
}

function segmentProblem(value: string, wildcards: boolean): string | null {
  if (value.length === 0) return 'must not be empty';
  if (value.length > MAX_EVENT_NAME_LENGTH) {
    return `is ${value.length} characters long; at most ${MAX_EVENT_NAME_LENGTH} allowed`;
  }
  const segments = value.split('.');
  for (const [i, segment] of segments.entries()) {
    if (segment === '') return `segment ${i + 1} is empty; allowed: ${ALLOWED}`;
    if (segment === '*' || segment === '**') {
      if (!wildcards) return 'wildcards ("*", "**") are allowed only in trigger patterns, not in event names';
      continue;
    }
    if (segment.includes('*')) {
      return wildcards
        ? `segment "${segment}": "*" and "**" must be a whole segment (e.g. "order.*", not "order*")`
        : 'wildcards ("*", "**") are allowed only in trigger patterns, not in event names';
    }
    if (!SEGMENT.test(segment)) return `segment "${clip(segment)}" has a character outside the allowed set; allowed: ${ALLOWED}`;
  }
  return null;
}

function clip(value: string): string {
  return value.length > 60 ? `${value.slice(0, 57)}...` : value;
}
