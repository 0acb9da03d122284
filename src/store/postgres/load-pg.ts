/**
 * Load pg before the engine's modules import it, with a `navigator` as
 * Node 21+ defines it (issue 24, worker RSS). pg's `lib/stream.js` asks at
 * load whether it runs on Cloudflare Workers: `navigator.userAgent` first,
 * else `typeof Response` and a `new Response(…)`. Node 20 has no `navigator`,
 * and its `Response` global loads Node's whole fetch implementation (undici)
 * at its first read: ~9 MiB of RSS and 1.5 MiB of heap in a bare process,
 * 51 builtins, that nothing else in a node uses. The `navigator` is there
 * only while pg loads; the engine's `import pg from 'pg'` then gets the
 * loaded module. Where a `navigator` exists (Node 21+) nothing is added.
 */
import { createRequire } from 'node:module';

export function loadPg(): void {
  const require = createRequire(import.meta.url);
  if ('navigator' in globalThis) {
    require('pg');
    return;
  }
  Object.defineProperty(globalThis, 'navigator', { value: { userAgent: `Node.js/${process.versions.node.split('.')[0]}` }, configurable: true });
  try {
    require('pg');
  } finally {
    delete (globalThis as { navigator?: unknown }).navigator;
  }
}
