/**
 * A PostgreSQL node loads pg without Node's fetch implementation
 * (store/postgres/load-pg.ts, issue 24 worker RSS): pg's Cloudflare check
 * reads the `Response` global at load, which on Node 20 loads undici (~9 MiB
 * of RSS). Checked in a child process, on the built modules: undici is not
 * loaded, no `navigator` is left behind, and pg is the module the engine's
 * own `import pg from 'pg'` gets.
 */
import { describe, expect, it } from 'vitest';
import { dist, runGcChild } from '../helpers/gc-child.js';

describe('loadPg', () => {
  it('loads pg without undici and leaves no navigator behind', () => {
    const script = `
      const hadNavigator = 'navigator' in globalThis;
      (await import(${dist('store/postgres/load-pg.js')})).loadPg();
      const undici = process.moduleLoadList.some((m) => m.includes('undici'));
      const navigatorLeft = !hadNavigator && 'navigator' in globalThis;
      const { default: pg } = await import(${dist('store/postgres/pools.js')}).then(() => import('pg'));
      process.stdout.write(JSON.stringify({ hadNavigator, undici, navigatorLeft, pool: typeof pg.Pool }));`;
    const result = runGcChild<{ hadNavigator: boolean; undici: boolean; navigatorLeft: boolean; pool: string }>(script);
    // Node 21+ has its own navigator (pg then never reads Response); Node 20 does not.
    if (!result.hadNavigator) expect(result.undici).toBe(false);
    expect(result.navigatorLeft).toBe(false);
    expect(result.pool).toBe('function');
  });
});
