/**
 * A preload that counts a process's PostgreSQL statements by name, for a
 * drain's statement mix (start marks, leases, settlements) without
 * pg_stat_statements:
 *
 *   COUNT_STATEMENTS_DIR=/tmp/counts NODE_OPTIONS="--import $PWD/bench/lib/count-statements.mjs" \
 *     node bench/drain-cpu.mjs --systems drover-postgres --jobs 20000 --repeat 1
 *
 * Every process that loads it (the bench and the worker it spawns) writes
 * `<dir>/<pid>.json` (`COUNT_STATEMENTS_DIR`, not a `BENCH_` variable: the
 * bench strips those from the worker's environment): per statement (its prepared name, or its text's first
 * 40 characters) the calls `n` and `items`, the elements of its first array
 * parameter (the jobs of a mark or a settlement; a lease's is its handlers),
 * and `sameTurnAsLease`: mark statements sent in the same event-loop turn as
 * a lease (what riding on the lease could save at most).
 *
 * It patches the `pg` that Drover's `dist/` loads (the root node_modules, not
 * bench/node_modules), so it counts the worker's statements.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const pg = createRequire(new URL('../../package.json', import.meta.url))('pg');
const dir = process.env.COUNT_STATEMENTS_DIR ?? '/tmp/drover-statement-counts';
mkdirSync(dir, { recursive: true });

const counts = new Map();
let turn = 0;
let turnEnds = false;
let lastLeaseTurn = -1;
let lastMarkTurn = -1;
let sameTurnAsLease = 0;

const { query } = pg.Client.prototype;
pg.Client.prototype.query = function countedQuery(config, values, callback) {
  // A turn ends at the next check phase: statements before it were sent in one turn.
  if (!turnEnds) {
    turnEnds = true;
    setImmediate(() => {
      turn++;
      turnEnds = false;
    });
  }
  const name = typeof config === 'string' ? config.slice(0, 40) : (config?.name ?? String(config?.text ?? '').trim().slice(0, 40));
  const params = typeof config === 'object' && config?.values ? config.values : values;
  const first = Array.isArray(params) ? params[0] : undefined;
  const items = typeof first === 'string' && first.startsWith('{') ? (first === '{}' ? 0 : first.split(',').length) : Array.isArray(first) ? first.length : 0;
  const entry = counts.get(name) ?? { n: 0, items: 0 };
  entry.n++;
  entry.items += items;
  counts.set(name, entry);
  if (name.startsWith('drover_start')) {
    if (lastLeaseTurn === turn) sameTurnAsLease++;
    lastMarkTurn = turn;
  } else if (name.startsWith('drover_lease')) {
    if (lastMarkTurn === turn && lastLeaseTurn !== turn) sameTurnAsLease++;
    lastLeaseTurn = turn;
  }
  return query.call(this, config, values, callback);
};

function dump() {
  if (counts.size > 0) writeFileSync(`${dir}/${process.pid}.json`, JSON.stringify({ statements: Object.fromEntries(counts), sameTurnAsLease }, null, 1));
}
process.on('exit', dump);
// A worker stopped by a signal may not reach 'exit'.
setInterval(dump, 300).unref();
