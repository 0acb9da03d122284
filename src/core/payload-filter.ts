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

/**
 * The name of the expression index on one payload field (`search.payloadIndexes`):
 * the same on both engines, at most 63 characters, safe unquoted.
 *
 * @example
 * payloadIndexName(['customer', 'id']); // 'jobs_payload_customer_id_<8 hex>'
 */
export function payloadIndexName(path: readonly string[]): string {
  assertPayloadPath(path);
  const field = path.join('.');
  // FNV-1a of the exact path: `a-b` and `a_b` read alike in the readable part but name different indexes.
  let hash = 0x811c9dc5;
  for (let i = 0; i < field.length; i++) hash = Math.imul(hash ^ field.charCodeAt(i), 0x01000193) >>> 0;
  return `jobs_payload_${field.replace(/[^A-Za-z0-9]/g, '_').toLowerCase().slice(0, 36)}_${hash.toString(16).padStart(8, '0')}`;
}

/** `search.payloadIndexes` entries: a field path as the API writes it (`customer.id`). */
export const PAYLOAD_FIELD_RE = /^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,7}$/;
