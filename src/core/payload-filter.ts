/**
 * Payload-field filters for job searches (`GET /v1/jobs?payload.orderId=o-1`):
 * the field path is parsed and checked here once, and the engines write the
 * checked segments into their SQL as a literal, so that an operator's
 * expression index on that field matches the query (docs/api.md).
 */
import { DroverError } from './errors.js';

/** Letters, digits, `_` and `-`: safe inside a SQL string literal and a JSON path without quoting. */
export const PAYLOAD_SEGMENT = /^[A-Za-z0-9_-]{1,64}$/;
export const MAX_PAYLOAD_DEPTH = 8;
/** Payload filters per search. */
export const MAX_PAYLOAD_FILTERS = 4;

export interface PayloadFilter {
  path: readonly string[];
  value: string;
}

/**
 * `customer.id` → `['customer', 'id']`; a DroverError naming the field when it is not plain.
 *
 * @example
 * parsePayloadPath('customer.id'); // ['customer', 'id']
 */
export function parsePayloadPath(field: string): string[] {
  const path = field.split('.');
  assertPayloadPath(path, field);
  return path;
}

/** Throws unless every segment is plain and there are 1 to MAX_PAYLOAD_DEPTH of them (engines call this before writing SQL). */
export function assertPayloadPath(path: readonly string[], shown = path.join('.')): void {
  if (path.length === 0 || path.length > MAX_PAYLOAD_DEPTH || !path.every((segment) => PAYLOAD_SEGMENT.test(segment))) {
    throw new DroverError('validation', `payload.${shown.slice(0, 200)}: expected 1-${MAX_PAYLOAD_DEPTH} field names joined by ".", each of letters, digits, "_" or "-"`);
  }
}
