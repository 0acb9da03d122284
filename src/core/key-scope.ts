/**
 * Which handlers an API key may work on (lease, heartbeat, complete, fail,
 * release) over `/v1/workers/*`.
 *
 * A `work` key is the credential copied onto every worker host, so it gets
 * least privilege: by default only handlers declared `remote: true`; with
 * handler patterns (`drover keys create --scopes work --handlers 'billing.*'`)
 * exactly the handlers they match, remote or not (a remote worker may share
 * an ordinary handler's jobs with the node's own pool). Built-in handlers
 * (`drover.*`, e.g. webhook deliveries) are never a work key's, whatever its
 * patterns: a worker that leased one could read the delivery's target and
 * drop it by reporting success. An `admin` key may work on every handler.
 *
 * Patterns use the event-pattern syntax of triggers (`core/trigger.ts`):
 * `*` is one dot-separated segment, `**` any number of them.
 */
import { DroverError } from './errors.js';
import { compilePattern, patternProblem } from './trigger.js';
import type { ApiKeyRow } from './types.js';

/** Handlers whose names start with this are built into the node and never leased by a work key. */
export const BUILT_IN_HANDLER_PREFIX = 'drover.';
/** Most handler patterns one key may carry. */
export const MAX_KEY_HANDLER_PATTERNS = 100;

/** What the scope check needs to know of a handler. */
export interface ScopedHandler {
  name: string;
  remote: boolean;
}

/**
 * Validate a key's handler patterns (as given to `drover keys create
 * --handlers` or `POST /v1/keys`). Throws `DroverError('validation')` naming
 * the pattern and what is wrong; returns them de-duplicated, in order.
 *
 * @example
 * validateHandlerPatterns(['billing.*', 'send-email']); // ['billing.*', 'send-email']
 * validateHandlerPatterns(['drover.webhook']); // throws: built-in handlers are never a work key's
 */
export function validateHandlerPatterns(patterns: readonly string[]): string[] {
  if (patterns.length === 0) throw new DroverError('validation', 'handlers: give at least one handler name or pattern (or leave it out for remote handlers only)');
  if (patterns.length > MAX_KEY_HANDLER_PATTERNS) throw new DroverError('validation', `handlers: at most ${MAX_KEY_HANDLER_PATTERNS} patterns, got ${patterns.length}`);
  for (const pattern of patterns) {
    const problem = typeof pattern === 'string' ? patternProblem(pattern) : 'expected a string';
    if (problem !== null) throw new DroverError('validation', `handlers: pattern "${String(pattern).slice(0, 100)}": ${problem}`);
    if (pattern.split('.')[0] === BUILT_IN_HANDLER_PREFIX.slice(0, -1)) {
      throw new DroverError('validation', `handlers: pattern "${pattern}": built-in handlers (${BUILT_IN_HANDLER_PREFIX}*) run only in the node; no work key may lease them`);
    }
  }
  return [...new Set(patterns)];
}

/** Compiled per key row; the key verifier keeps a row for seconds, so a hot worker compiles once. */
const matchers = new WeakMap<ApiKeyRow, (handler: ScopedHandler) => boolean>();

/**
 * Whether `key` may work on `handler`. `admin` may work on every handler;
 * a key without `work` on none.
 *
 * @example
 * mayWorkOn(workKey, { name: 'resize-image', remote: true }); // true for a default work key
 * mayWorkOn(workKey, { name: 'drover.webhook', remote: false }); // false for every work key
 */
export function mayWorkOn(key: ApiKeyRow, handler: ScopedHandler): boolean {
  let matcher = matchers.get(key);
  if (!matcher) {
    matcher = compileScope(key);
    matchers.set(key, matcher);
  }
  return matcher(handler);
}

function compileScope(key: ApiKeyRow): (handler: ScopedHandler) => boolean {
  if (key.scopes.includes('admin')) return () => true;
  if (!key.scopes.includes('work')) return () => false;
  const builtIn = (name: string) => name.startsWith(BUILT_IN_HANDLER_PREFIX);
  if (key.handlers === null) return (h) => h.remote && !builtIn(h.name);
  const patterns = key.handlers.map((p) => compilePattern(p));
  return (h) => !builtIn(h.name) && patterns.some((match) => match(h.name));
}

/**
 * What a key may work on, in words for error messages and `keys list`.
 *
 * @example
 * describeWorkScope({ ...key, handlers: null }); // 'handlers declared remote: true'
 */
export function describeWorkScope(key: Pick<ApiKeyRow, 'scopes' | 'handlers'>): string {
  if (key.scopes.includes('admin')) return 'every handler (admin)';
  if (!key.scopes.includes('work')) return 'no handler (the key has no work scope)';
  if (key.handlers === null) return 'handlers declared remote: true';
  return `handlers matching ${key.handlers.join(', ')} (never ${BUILT_IN_HANDLER_PREFIX}*)`;
}
