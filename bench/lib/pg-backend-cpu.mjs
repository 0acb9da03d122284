/**
 * The CPU time of a Drover engine's PostgreSQL backends, read from
 * /proc/<pid>/schedstat (on-CPU ns, kernel time included): only for a server
 * on this machine whose /proc this user may read. The engine's connections
 * are found by their application_name, `drover/<schema>`.
 */
import { readFileSync } from 'node:fs';

/** CPU ns so far of the backends serving `schema`'s engine, by pid. */
export async function backendCpu(admin, schema) {
  const { rows } = await admin.query('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [`drover/${schema}`]);
  const byPid = new Map();
  for (const { pid } of rows) {
    try {
      byPid.set(pid, Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]));
    } catch {
      // Gone since the query: its time is lost, as is one that ends mid-block.
    }
  }
  return byPid;
}

/** ns used between two readings: a backend new in `after` counts from its start. */
export const usedBetween = (before, after) => [...after].reduce((sum, [pid, ns]) => sum + ns - (before.get(pid) ?? 0), 0);
