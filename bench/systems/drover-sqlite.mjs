/** Drover on its embedded SQLite store, default settings (WAL, synchronous=FULL): one file per run in a temp dir. */
import { join } from 'node:path';
import { droverSystem } from './drover.mjs';

export default function create(options) {
  return droverSystem(
    {
      name: 'drover sqlite',
      settings: { store: 'SQLite file on local disk (temp dir)', journalMode: 'WAL', synchronous: 'FULL (default)' },
      storeUrl: (dir) => join(dir, 'drover.db'),
    },
    options,
  );
}
