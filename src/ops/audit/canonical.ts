/**
 * Canonical JSON: object keys sorted, no whitespace, so the same record hashes
 * the same whether it was read from the store, from an export file or from
 * the API (each of which may order keys differently).
 */

/**
 * @example
 * canonicalJson({ b: 1, a: [true, { d: null, c: 'x' }] }); // '{"a":[true,{"c":"x","d":null}],"b":1}'
 */
export function canonicalJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** The value as it will read back from JSON storage (undefined → null, Dates → strings, NaN → null). */
export function asStoredJson(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value ?? null) ?? 'null') as unknown;
}
