/**
 * What `DROVER_DATABASE_URL` (config `databaseUrl`) may be. A mistyped scheme
 * (`postgress://…`) used to be taken as a SQLite path: the node made a
 * directory named `postgress:`, a fresh store and a new admin key, and
 * served - an empty second store nobody meant. Anything that looks like a
 * URL must now use a scheme Drover knows.
 */

export const STORE_URL_FORMS =
  'a PostgreSQL URL (postgres://user@host:5432/db or postgresql://…), a SQLite file path (./data/drover.db, /var/lib/drover/drover.db), or file:/sqlite: followed by a path';

/** The engine a store URL names, and for SQLite the file path. */
export type StoreLocation = { engine: 'postgres'; url: string } | { engine: 'sqlite'; path: string };

/**
 * Classify a store URL, or say what is wrong with it.
 * @example
 * parseStoreUrl('postgres://postgres@127.0.0.1/app') // { engine: 'postgres', url: … }
 * parseStoreUrl('file:///var/lib/drover/drover.db')  // { engine: 'sqlite', path: '/var/lib/drover/drover.db' }
 * parseStoreUrl('postgress://db/app')                // { problem: 'unknown scheme "postgress:"; …' }
 */
export function parseStoreUrl(url: string): StoreLocation | { problem: string } {
  if (/^postgres(ql)?:\/\//i.test(url)) return { engine: 'postgres', url };
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1];
  // A one-letter "scheme" is a Windows drive (C:\data\drover.db).
  if (scheme === undefined || scheme.length === 1) return url.length > 0 ? { engine: 'sqlite', path: url } : { problem: `expected ${STORE_URL_FORMS}, got an empty string` };
  const lower = scheme.toLowerCase();
  if (lower === 'sqlite' || lower === 'file') {
    const rest = url.slice(scheme.length + 1);
    // file:///abs, file://localhost/abs, file:rel, sqlite://rel (kept as before), sqlite:rel
    const path = lower === 'file' && rest.startsWith('//') ? decodeURIComponent(rest.replace(/^\/\/(localhost)?(?=\/)/, '')) : rest.replace(/^\/\//, '');
    return path.length > 0 ? { engine: 'sqlite', path } : { problem: `"${url}" names no file; expected ${STORE_URL_FORMS}` };
  }
  const hint = /^(postgres|postgresql)$/.test(lower) ? ' (write "//" after it: postgres://user@host/db)' : /^p(ost)?g/.test(lower) ? ' (did you mean postgres://?)' : '';
  return { problem: `unknown scheme "${scheme}:"${hint}; refused rather than taken as a SQLite file name. Expected ${STORE_URL_FORMS}` };
}
