/**
 * The template language of built-in actions, pure: `{{path}}` placeholders
 * replaced by values from the event, nothing else. A path is names (and
 * array indexes) separated by `.`, starting at one of the roots the caller
 * allows (`data.orderId`, `event.name`, `data.items.0.sku`). There are no
 * expressions, calls, conditionals or loops, so a template cannot run code
 * or loop, and a lookup reads only an object's own members (`__proto__`,
 * `constructor` and friends find nothing).
 *
 * Two forms: a text template (a string), and a JSON template (any JSON value
 * whose strings are text templates). In a JSON template, a string that is a
 * single placeholder becomes the value itself (a number stays a number, an
 * object an object); anything else is text. Values enter text through an
 * escaper: JSON string escaping for a JSON body written as text, HTML or
 * MarkdownV2 escaping for a Telegram message in that parse mode.
 */
import { DroverError } from './errors.js';

/** Longest template source, in characters (a JSON template counts its strings). */
export const MAX_TEMPLATE_CHARS = 16_384;
const MAX_PLACEHOLDERS = 200;
const MAX_PATH_SEGMENTS = 16;
const SEGMENT = /^[A-Za-z0-9_-]{1,100}$/;
const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;

/** One compiled text template: literal text and paths, alternating. */
export interface TextTemplate {
  readonly parts: ReadonlyArray<string | { readonly path: readonly string[] }>;
}

/** A compiled JSON template. */
export type JsonTemplate =
  | { readonly kind: 'text'; readonly template: TextTemplate }
  | { readonly kind: 'value'; readonly path: readonly string[] }
  | { readonly kind: 'array'; readonly items: readonly JsonTemplate[] }
  | { readonly kind: 'object'; readonly members: ReadonlyArray<readonly [string, JsonTemplate]> }
  | { readonly kind: 'literal'; readonly value: unknown };

/** Turns a value's text into what may stand in the output (identity for plain text). */
export type Escaper = (text: string) => string;

/**
 * Compile a text template. `where` names the field in errors; `roots` are
 * the first segments a path may start with.
 * Throws `DroverError('validation')` on a malformed placeholder or an unknown root.
 *
 * @example
 * const t = compileTemplate('Order {{data.orderId}} from {{event.name}}', 'action.text', ['data', 'event']);
 * renderTemplate(t, { data: { orderId: 42 }, event: { name: 'order.created' } }); // 'Order 42 from order.created'
 */
export function compileTemplate(source: string, where: string, roots: readonly string[]): TextTemplate {
  if (source.length > MAX_TEMPLATE_CHARS) throw invalid(where, `is ${source.length} characters long; at most ${MAX_TEMPLATE_CHARS}`);
  const parts: Array<string | { path: string[] }> = [];
  let last = 0;
  let count = 0;
  for (const match of source.matchAll(PLACEHOLDER)) {
    if (++count > MAX_PLACEHOLDERS) throw invalid(where, `has more than ${MAX_PLACEHOLDERS} placeholders`);
    const literal = source.slice(last, match.index);
    assertNoBraces(literal, where);
    if (literal) parts.push(literal);
    parts.push({ path: parsePath(match[1]!, where, roots) });
    last = match.index + match[0].length;
  }
  const tail = source.slice(last);
  assertNoBraces(tail, where);
  if (tail) parts.push(tail);
  return { parts };
}

/**
 * Render a text template: each placeholder becomes its value's text (a
 * string as is, a number or boolean written out, an object or array as
 * JSON, a missing value or null as nothing), passed through `escape`.
 *
 * @example
 * renderTemplate(compileTemplate('{"note":"{{data.note}}"}', 'body', ['data']), { data: { note: 'a "quote"' } }, jsonStringEscape);
 * // '{"note":"a \"quote\""}'
 */
export function renderTemplate(template: TextTemplate, scope: unknown, escape: Escaper = (text) => text): string {
  let out = '';
  for (const part of template.parts) out += typeof part === 'string' ? part : escape(asText(lookup(scope, part.path)));
  return out;
}

/**
 * Compile a JSON template (a body or a tool's arguments given as JSON).
 *
 * @example
 * const t = compileJsonTemplate({ id: '{{data.orderId}}', note: 'order {{data.orderId}}' }, 'action.arguments', ['data']);
 * renderJsonTemplate(t, { data: { orderId: 42 } }); // { id: 42, note: 'order 42' }
 */
export function compileJsonTemplate(value: unknown, where: string, roots: readonly string[]): JsonTemplate {
  let budget = MAX_TEMPLATE_CHARS;
  const walk = (v: unknown, at: string, depth: number): JsonTemplate => {
    if (depth > 32) throw invalid(where, 'is nested more than 32 levels deep');
    if (typeof v === 'string') {
      budget -= v.length;
      if (budget < 0) throw invalid(where, `holds more than ${MAX_TEMPLATE_CHARS} characters of text`);
      const template = compileTemplate(v, at, roots);
      const only = template.parts.length === 1 ? template.parts[0] : undefined;
      return only !== undefined && typeof only !== 'string' && v.trim() === v ? { kind: 'value', path: only.path } : { kind: 'text', template };
    }
    if (Array.isArray(v)) return { kind: 'array', items: v.map((item, i) => walk(item, `${at}[${i}]`, depth + 1)) };
    if (typeof v === 'object' && v !== null) {
      return { kind: 'object', members: Object.entries(v).map(([key, item]) => [key, walk(item, `${at}.${key}`, depth + 1)] as const) };
    }
    return { kind: 'literal', value: v };
  };
  return walk(value, where, 0);
}

/** The JSON value of a JSON template for `scope`; a single placeholder with no value gives null. */
export function renderJsonTemplate(template: JsonTemplate, scope: unknown): unknown {
  switch (template.kind) {
    case 'text':
      return renderTemplate(template.template, scope);
    case 'value':
      return lookup(scope, template.path) ?? null;
    case 'array':
      return template.items.map((item) => renderJsonTemplate(item, scope));
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [key, item] of template.members) Object.defineProperty(out, key, { value: renderJsonTemplate(item, scope), enumerable: true, writable: true, configurable: true });
      return out;
    }
    case 'literal':
      return template.value;
  }
}

/** Escape text for the inside of a JSON string (no quotes added). */
export const jsonStringEscape: Escaper = (text) => JSON.stringify(text).slice(1, -1);

/** Escape text for Telegram's `HTML` parse mode (and HTML generally). */
export const htmlEscape: Escaper = (text) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Escape text for Telegram's `MarkdownV2` parse mode: every special character gets a backslash. */
export const markdownV2Escape: Escaper = (text) => text.replace(/[_*[\]()~`>#+\-=|{}.!\\]/g, '\\$&');

/** The value at `path` in `scope`, through own members only; undefined when any step is missing. */
export function lookup(scope: unknown, path: readonly string[]): unknown {
  let at: unknown = scope;
  for (const segment of path) {
    if (typeof at !== 'object' || at === null) return undefined;
    if (Array.isArray(at)) {
      if (!/^\d+$/.test(segment)) return undefined;
      at = at[Number(segment)];
      continue;
    }
    if (!Object.prototype.hasOwnProperty.call(at, segment)) return undefined;
    at = (at as Record<string, unknown>)[segment];
  }
  return at;
}

function asText(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value) ?? '';
}

function parsePath(text: string, where: string, roots: readonly string[]): string[] {
  const path = text.split('.');
  if (path.length > MAX_PATH_SEGMENTS) throw invalid(where, `placeholder {{${clip(text)}}} has more than ${MAX_PATH_SEGMENTS} segments`);
  for (const segment of path) {
    if (!SEGMENT.test(segment)) {
      throw invalid(where, `placeholder {{${clip(text)}}} is not a field path; write names separated by "." (letters, digits, "_", "-"), e.g. {{data.orderId}}; expressions are not supported`);
    }
  }
  if (!roots.includes(path[0]!)) throw invalid(where, `placeholder {{${clip(text)}}} starts with "${path[0]}"; a path starts with one of ${roots.join(', ')}`);
  return path;
}

function assertNoBraces(literal: string, where: string): void {
  if (literal.includes('{{') || literal.includes('}}')) throw invalid(where, `has an unmatched "{{" or "}}" near "${clip(literal)}"`);
}

function invalid(where: string, problem: string): DroverError {
  return new DroverError('validation', `${where}: template ${problem}`);
}

function clip(text: string): string {
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}
