/**
 * The enqueue path's shortcuts (issue 24, server CPU per request) answer
 * exactly what the long way does: `jobJson`'s times are `toISOString`'s to the
 * byte across seconds, signs and years, and a key the verifier's cache holds
 * is judged without the store as `verifyHash` judges it.
 */
import { describe, expect, it } from 'vitest';
import { hashKey, KeyVerifier } from '../../src/api/auth.js';
import { jobJson } from '../../src/api/serialize.js';
import type { ApiKeyRow, JobRow } from '../../src/core/types.js';

const at = (ms: number | null) => jobJson({ runAt: ms, createdAt: null, updatedAt: null, leaseExpiresAt: null, finishedAt: null, payload: null, result: null } as unknown as JobRow).runAt;

describe('jobJson times', () => {
  it('are toISOString to the byte, in and across seconds, before 1970 and past 9999', () => {
    const now = Date.now();
    const bases = [0, -1, -1000, -1001, 999, 1000, 253402300799999, 253402300800000, -62167219200001, 8.64e15 - 5000, -8.64e15 + 5000, now];
    for (const base of bases) {
      for (const step of [0, 1, 2, 999, 1000, 1001, -1, -999, -1000, 12, 345]) {
        const ms = base + step;
        if (Math.abs(ms) > 8.64e15) continue;
        expect(at(ms)).toBe(new Date(ms).toISOString());
      }
    }
  });

  it('truncate a fractional time as Date does, and still throw on an invalid one', () => {
    at(1000);
    expect(at(1000.7)).toBe(new Date(1000.7).toISOString());
    expect(at(-1.5)).toBe(new Date(-1.5).toISOString());
    expect(() => at(Number.NaN)).toThrow(RangeError);
    expect(at(null)).toBeNull();
  });
});

describe('KeyVerifier.cachedHash', () => {
  const key = (overrides: Partial<ApiKeyRow> = {}): ApiKeyRow => ({
    id: 'key_1', name: 'k', hash: hashKey('drv_secret_0123456789'), scopes: ['produce'], handlers: null, createdAt: 0, expiresAt: null, revokedAt: null, ...overrides,
  });

  it('answers only for keys verified within the cache lifetime, as verifyHash would', async () => {
    let now = 1_000_000;
    let row: ApiKeyRow | null = key({ expiresAt: now + 3_000 });
    let lookups = 0;
    const verifier = new KeyVerifier({ findKeyByHash: async () => (lookups++, row) }, () => now, { maxFailures: 2, windowMs: 60_000 });
    const hash = hashKey('drv_secret_0123456789');
    expect(verifier.cachedHash(hash, '10.0.0.1')).toBeUndefined(); // never looked up: the store decides
    expect(await verifier.verifyHash(hash, '10.0.0.1')).toEqual(row);
    expect(verifier.cachedHash(hash, '10.0.0.1')).toEqual(row);
    now += 3_000; // expired while cached: refused without the store, like verifyHash
    expect(verifier.cachedHash(hash, '10.0.0.1')).toBeNull();
    expect(await verifier.verifyHash(hash, '10.0.0.1')).toBeNull();
    expect(lookups).toBe(1);
    now += 2_001; // past the cache lifetime: the store again
    row = key();
    expect(verifier.cachedHash(hash, '10.0.0.1')).toBeUndefined();
    expect(await verifier.verifyHash(hash, '10.0.0.1')).toEqual(row);
    expect(lookups).toBe(2);
  });
});
