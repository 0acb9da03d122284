/**
 * BENCH_STAGES=1, latency workload (bench/systems/drover.mjs): loaded into the
 * worker process with `--import`, it stamps each latency job's path on the
 * machine's monotonic clock (clock.mjs), keyed by the job's `sent` (its
 * payload), without touching the product's code:
 *
 *   req      the request's headers parsed by node:http (diagnostics_channel)
 *   body     its body fully read
 *   acked    its response finished (written to the socket)
 *   pool     pg `Pool.query` called with the plain insert (the batcher's turn done)
 *   call     the pooled connection's `Client.query` called (checked out)
 *   onConn   whether that connection had a statement out or queued then
 *   write    the statement handed to the socket (`Query.submit`)
 *   data     the last bytes that connection's socket received before the answer's callback
 *   answer   the insert's callback ran (the commit answered, parsed)
 *   batch    how many latency jobs that insert carried
 *   leasing  whether that insert leased jobs (an idle node's claim)
 *   leased   whether it leased this job
 *
 * plus every GC (PerformanceObserver) and the event loop's delay
 * (`monitorEventLoopDelay`). On SQLite the group commit's stages are stamped
 * instead (stage-trace-sqlite.mjs). The latency handler reads
 * `globalThis.__benchStages`, calls its `settle`, and adds its rows to its report.
 */
import { createRequire } from 'node:module';
import { subscribe } from 'node:diagnostics_channel';
import { monitorEventLoopDelay, PerformanceObserver, performance } from 'node:perf_hooks';
import { settleSqlite, traceSqlite } from './stage-trace-sqlite.mjs';

const now = () => Number(process.hrtime.bigint()) / 1e6;
// performance.now() → the monotonic clock: its origin fixed once here (both are monotonic).
const perfOffset = now() - performance.now();

/** The worker's own `pg` (the worktree's node_modules, not bench/node_modules). */
const pg = createRequire(new URL('../../package.json', import.meta.url))('pg');
const loop = monitorEventLoopDelay({ resolution: 1 });
loop.enable();
const ms = (ns) => Math.round(ns / 1e4) / 100;
const stages = {
  bySent: new Map(),
  gc: [],
  inserts: [],
  /** Before the report: the SQLite stamps resolved, the event loop's delay read. */
  settle(jobs) {
    settleSqlite(stages, jobs);
    stages.loop = { p50: ms(loop.percentile(50)), p99: ms(loop.percentile(99)), max: ms(loop.max) };
  },
};
globalThis.__benchStages = stages;

const SENT = /"sent":([0-9.eE+-]+)/g;
const sentsOf = (text) => [...text.matchAll(SENT)].map((m) => Number(m[1]));
const row = (sent) => {
  let r = stages.bySent.get(sent);
  if (!r) stages.bySent.set(sent, (r = {}));
  return r;
};

// HTTP: the request's arrival, its body, and the answer's write.
const requests = new WeakMap();
subscribe('http.server.request.start', ({ request, response }) => {
  const info = { req: now(), body: 0, sents: [] };
  requests.set(response, info);
  const chunks = [];
  const emit = request.emit;
  request.emit = function (event, chunk, ...rest) {
    if (event === 'data') chunks.push(chunk);
    else if (event === 'end') {
      info.body = now();
      info.sents = sentsOf(Buffer.concat(chunks).toString());
      for (const sent of info.sents) Object.assign(row(sent), { req: info.req, body: info.body });
    }
    return emit.call(this, event, chunk, ...rest);
  };
});
subscribe('http.server.response.finish', ({ response }) => {
  const info = requests.get(response);
  if (!info) return;
  const at = now();
  for (const sent of info.sents) row(sent).acked = at;
});

const isInsert = (config) => typeof config === 'object' && config !== null && typeof config.name === 'string' && config.name.startsWith('drover_enqueue_plain');

// pg: the plain insert's checkout, call, write, last bytes in and answer, per connection.
const submit = pg.Query.prototype.submit;
pg.Query.prototype.submit = function (connection) {
  this.__writeAt = now();
  return submit.call(this, connection);
};
const poolQuery = pg.Pool.prototype.query;
pg.Pool.prototype.query = function (config, values, callback) {
  if (isInsert(config)) config.__poolAt = now();
  return poolQuery.call(this, config, values, callback);
};
const query = pg.Client.prototype.query;
pg.Client.prototype.query = function (config, values, callback) {
  if (!isInsert(config)) return query.call(this, config, values, callback);
  const stream = this.connection?.stream;
  if (stream && !stream.__benchWatched) {
    stream.__benchWatched = true;
    // First in line: stamped before pg parses the bytes (and runs the callbacks they answer).
    stream.prependListener('data', () => (stream.__lastData = now()));
  }
  const call = now();
  const onConn = (this._activeQuery ? 1 : 0) + this._queryQueue.length;
  const sents = sentsOf(String(config.values?.[2] ?? ''));
  // A leasing insert's third value from the end is its jobs' lease expiries ('{t,NULL,…}', intake.ts): NULL = not leased.
  const leasing = config.name.endsWith('_leasing');
  const until = leasing ? String(config.values.at(-3)).slice(1, -1).split(',') : [];
  let q;
  const done = () => {
    const answer = now();
    stages.inserts.push({ pool: config.__poolAt ?? call, answer, jobs: sents.length });
    sents.forEach((sent, n) => Object.assign(row(sent), { leasing, leased: leasing && until[n] !== 'NULL', pool: config.__poolAt ?? call, call, onConn, write: q?.__writeAt ?? 0, data: stream?.__lastData ?? 0, answer, batch: sents.length }));
  };
  // pg-pool passes a callback (and gets no promise); a direct call gets a promise.
  const wrapped = typeof callback === 'function' ? (err, res) => (done(), callback(err, res)) : callback;
  const result = query.call(this, config, values, wrapped);
  q = this._activeQuery ?? this._queryQueue[this._queryQueue.length - 1];
  if (wrapped === undefined && result && typeof result.then === 'function') result.then(done, done);
  return result;
};

await traceSqlite(stages, row);

new PerformanceObserver((list) => {
  for (const e of list.getEntries()) stages.gc.push({ at: e.startTime + perfOffset, ms: e.duration, kind: e.detail?.kind ?? e.kind });
}).observe({ entryTypes: ['gc'] });
