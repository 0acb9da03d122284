/**
 * `drover start` drops zod and the config schema once the node's config is
 * resolved (core/zod.ts, issue 24: ~3 MiB of a worker's live heap). The
 * check runs in a child process with `--expose-gc`, on the built modules:
 * that the two are collected, and that a later validation still works.
 */
import { describe, expect, it } from 'vitest';
import { dist, releaseAndCollect, runGcChild } from '../helpers/gc-child.js';

describe('releaseConfigSchema', () => {
  it('lets zod and the built schema be collected, and a later resolve loads them anew', () => {
    const script = `
      import { createRequire } from 'node:module';
      const { resolveConfig } = await import(${dist('core/config.js')});
      const { configSchema, releaseConfigSchema } = await import(${dist('core/config-schema.js')});
      const { zod } = await import(${dist('core/zod.js')});
      resolveConfig({ handlers: [{ name: 'a', run() {} }] }, {});
      const refs = [new WeakRef(zod()), new WeakRef(configSchema())];
      ${releaseAndCollect('releaseConfigSchema()', 'zod')}
      const counts = [cached()];
      let again = '';
      try {
        resolveConfig({ handlers: [{ name: 'a', concurrency: 0, run() {} }] }, {});
      } catch (error) {
        again = error.message;
      }
      counts.push(cached());
      process.stdout.write(JSON.stringify({ collected: refs.map((ref) => ref.deref() === undefined), cached: counts, again }));`;
    const result = runGcChild<{ collected: boolean[]; cached: number[]; again: string }>(script);
    expect(result.collected).toEqual([true, true]);
    // Out of the require cache, until the next validation loads zod again.
    expect(result.cached[0]).toBe(0);
    expect(result.cached[1]).toBeGreaterThan(0);
    expect(result.again).toContain('handlers[0].concurrency: expected an integer ≥ 1, got 0');
  });
});
