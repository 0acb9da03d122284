/**
 * Limits on the shape of request JSON, enforced on the raw text before it is
 * parsed into objects. Deeply nested JSON is small (8 KB reaches 4,000
 * levels) yet every recursive step after parsing — validation, storing,
 * `JSON.stringify` in a response — can overflow the stack on it: a 500 at
 * intake, or worse, a stored job that fails every list page it appears on.
 * The scan is a loop over characters (no recursion) and refuses with 422
 * `json-too-complex` before anything is stored.
 *
 * Read paths use `tooDeep` to replace values stored before the cap existed.
 */
import type { FastifyInstance } from 'fastify';
import { MAX_JSON_DEPTH } from '../core/config-schema.js';
import { DroverError } from '../core/errors.js';

export interface JsonLimits {
  maxDepth: number;
  /** Keys, array elements and containers, counted over the whole document. */
  maxMembers: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;

/**
 * Check JSON text against the limits; null when within them. Malformed text is
 * left for the parser to reject (400): this only counts brackets and commas
 * outside strings.
 *
 * @example
 * checkJsonText('[[[]]]', { maxDepth: 2, maxMembers: 100 }); // DroverError json_too_complex
 */
export function checkJsonText(text: string, caps: JsonLimits): DroverError | null {
  let depth = 0;
  let members = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
      continue;
    }
    if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      depth++;
      members++;
      if (depth > caps.maxDepth) {
        return new DroverError('json_too_complex', `the request JSON is nested more than ${caps.maxDepth} levels deep (limits.maxJsonDepth); flatten it`, {
          extensions: { limit: 'maxJsonDepth', max: caps.maxDepth },
        });
      }
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    } else if (c === COMMA) {
      members++;
    }
    if (members > caps.maxMembers) {
      return new DroverError('json_too_complex', `the request JSON has more than ${caps.maxMembers} keys and elements (limits.maxJsonMembers); send fewer or smaller items`, {
        extensions: { limit: 'maxJsonMembers', max: caps.maxMembers },
      });
    }
  }
  return null;
}

/**
 * Replace Fastify's JSON body parser with one that checks the limits first,
 * then parses exactly as before (prototype-poisoning protection included).
 */
export function registerJsonLimits(app: FastifyInstance, limits: JsonLimits): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const refused = checkJsonText(body as string, limits);
    if (refused) {
      done(refused, undefined);
      return;
    }
    parse(request, body as string, done);
  });
}

/**
 * Whether a parsed value nests deeper than `max` (default the API's hard cap).
 * Iterative, so it is safe on exactly the values it is meant to catch.
 *
 * @example
 * tooDeep([[[]]], 2); // true
 */
export function tooDeep(value: unknown, max: number = MAX_JSON_DEPTH): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop() as [unknown, number];
    if (depth > max) return true;
    const children = Array.isArray(current) ? current : Object.values(current as object);
    for (const child of children) if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
  }
  return false;
}

/** What a read path shows instead of a value too deep to serialise, with the reason. */
export const OMITTED_TOO_DEEP = `nested more than ${MAX_JSON_DEPTH} levels deep (stored before limits.maxJsonDepth existed); not shown`;
