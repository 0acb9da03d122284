import { describe, expect, it } from 'vitest';
import { randomUuid } from '../../src/core/uuid.js';

const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('randomUuid', () => {
  it('gives version 4 UUIDs in crypto.randomUUID\'s format, none twice, across refills of its pool', () => {
    const seen = new Set<string>();
    // 1,000 ids: several refills of the 128-id pool.
    for (let i = 0; i < 1_000; i++) {
      const id = randomUuid();
      expect(id).toMatch(V4);
      seen.add(id);
    }
    expect(seen.size).toBe(1_000);
  });

  it('each id is its own string: the next one does not change it', () => {
    const first = randomUuid();
    const copy = `${first}`;
    randomUuid();
    expect(first).toBe(copy);
  });
});
