/** Drover on its embedded SQLite store, default settings (WAL, synchronous=FULL): one file per run in a temp dir. */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { droverSystem } from './drover.mjs';

const Database = createRequire(new URL('../../package.json', import.meta.url))('better-sqlite3');

/** Run `body(db)` on the run's store file, with no node running on it (the bench's setup steps). */
function withDb(run, body) {
  const db = new Database(run.storeUrl);
  try {
    return body(db);
  } finally {
    db.close();
  }
}

export default function create(options) {
  return droverSystem(
    {
      name: 'drover sqlite',
      settings: { store: 'SQLite file on local disk (temp dir)', journalMode: 'WAL', synchronous: 'FULL (default)' },
      storeUrl: (dir) => join(dir, 'drover.db'),
      /** `times` copies of the queued jobs there are (every column but the id), in one transaction. */
      copyJobs(run, times) {
        withDb(run, (db) => {
          // Generated columns (hidden 2, 3) are computed, not inserted.
          const columns = db.prepare('SELECT name FROM pragma_table_xinfo(\'jobs\') WHERE hidden = 0 AND name <> \'id\'').all().map((c) => c.name).join(', ');
          db.prepare(`WITH RECURSIVE copies(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM copies WHERE k < ?)
            INSERT INTO jobs (${columns}) SELECT ${columns} FROM (SELECT * FROM jobs WHERE state = 'queued' ORDER BY id) AS j CROSS JOIN copies`).run(times);
        });
      },
      /** EXPLAIN QUERY PLAN of the lease's candidate statement (src/store/sqlite/statements.ts, `leaseCandidates`), on the full table. */
      leasePlan(run) {
        return withDb(run, (db) => {
          const sql = "SELECT id FROM jobs WHERE state = 'queued' AND handler = ? ORDER BY fair_tag, run_at - priority * priority_ms, id LIMIT ?";
          return db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all('noop', 26).map((r) => r.detail).join('\n');
        });
      },
    },
    options,
  );
}
