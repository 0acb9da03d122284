/**
 * BENCH_STAGES=1, latency workload: each job's enqueue→start cut into stages,
 * from the bench's own stamps (the SDK's request written: `watchClientSends`)
 * and the worker's (stage-trace.mjs, loaded into it with `--import`), all on
 * the machine's monotonic clock (clock.mjs). `breakdown` gives each stage's
 * p50/p99 over all jobs, and for the slowest 1 % which stage carried their
 * extra time (the stage furthest above its own median) and how many of them
 * overlapped a GC of the worker.
 */
import http from 'node:http';
import { now } from './clock.mjs';

export const STAGE_TRACE = new URL('./stage-trace.mjs', import.meta.url).pathname;

const SENT = /"sent":([0-9.eE+-]+)/g;

/** Stamp when each request carrying a `sent` is ended (its body handed to the socket) in this process. */
export function watchClientSends() {
  const written = new Map();
  const end = http.ClientRequest.prototype.end;
  http.ClientRequest.prototype.end = function (data, ...rest) {
    if (typeof data === 'string' || Buffer.isBuffer(data)) {
      const at = now();
      for (const m of String(data).matchAll(SENT)) written.set(Number(m[1]), at);
    }
    return end.call(this, data, ...rest);
  };
  return { written, stop: () => (http.ClientRequest.prototype.end = end) };
}

/** The stages, in path order: name → (job stamps) → ms. */
const STAGES = {
  'SDK (tick, JSON, request)': (j) => j.written - j.sent,
  'client → server headers parsed': (j) => j.req - j.written,
  'body read': (j) => j.body - j.req,
  'route → insert sent to pool': (j) => j.pool - j.body,
  '… of which behind an insert in flight': (j) => j.behind,
  'pool checkout': (j) => j.call - j.pool,
  'queued on the connection': (j) => j.write - j.call,
  'PG round trip (exec + commit)': (j) => j.data - j.write,
  'answer parsed': (j) => j.answer - j.data,
  'answer → handler start': (j) => j.started - j.answer,
  'enqueue → start': (j) => j.started - j.sent,
  '(answer → response written)': (j) => j.acked - j.answer,
};
/** The same on SQLite (stage-trace-sqlite.mjs): the group commit's batch, its WAL sync, the lease. */
const SQLITE_STAGES = {
  'SDK (tick, JSON, request)': STAGES['SDK (tick, JSON, request)'],
  'client → server headers parsed': STAGES['client → server headers parsed'],
  'body read': STAGES['body read'],
  'route → op submitted': (j) => j.submit - j.body,
  'submitted → batch begins': (j) => j.begin - j.submit,
  '… of which other inline syncs in its way': (j) => j.inlineInWay,
  'batch (BEGIN … COMMIT, WAL written)': (j) => j.commit - j.begin,
  'commit → its sync starts': (j) => j.syncFrom - j.commit,
  'WAL fdatasync': (j) => j.syncTo - j.syncFrom,
  'durable → handler start': (j) => j.started - j.syncTo,
  'enqueue → start': STAGES['enqueue → start'],
  '(durable → response written)': (j) => j.acked - j.syncTo,
};
const pathOf = (stages) => Object.keys(stages).filter((s) => !s.startsWith('…') && !s.startsWith('(') && s !== 'enqueue → start');
const overlap = (from, to, spans) => spans.reduce((sum, s) => sum + Math.max(0, Math.min(to, s.to) - Math.max(from, s.from)), 0);

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const round = (x) => Math.round(x * 100) / 100;

/**
 * @param {{ jobs: object[], inserts: {pool: number, answer: number}[], gc: {at: number, ms: number}[] }} stages the worker's
 * @param {number[]} sentAt parallel to stages.jobs
 * @param {Map<number, number>} written the bench's (watchClientSends)
 */
export function breakdown(stages, sentAt, written) {
  if (stages.batches?.length > 0) return sqliteBreakdown(stages, sentAt, written);
  const inserts = [...stages.inserts].sort((a, b) => a.pool - b.pool);
  const jobs = stages.jobs
    .map((j, i) => ({ ...j, sent: sentAt[i], written: written.get(sentAt[i]) }))
    .filter((j) => j.written !== undefined && j.answer !== undefined && j.req !== undefined);
  for (const j of jobs) {
    // Another insert out when this job's body was read, answered after it: the wait behind it.
    let behind = 0;
    for (const ins of inserts) {
      if (ins.pool > j.body) break;
      if (ins.pool !== j.pool && ins.answer > j.body) behind = Math.max(behind, Math.min(ins.answer, j.pool) - j.body);
    }
    j.behind = behind;
  }
  const { table, slow, slowest1pct, gc } = tail(jobs, STAGES, stages.gc);
  return {
    jobs: jobs.length,
    stagesMs: table,
    slowest1pct: {
      ...slowest1pct,
      onBusyConnection: slow.filter((j) => j.onConn > 0).length,
      inLeasingInsert: slow.filter((j) => j.leasing).length,
      leasedByInsert: slow.filter((j) => j.leased).length,
      batchSizes: slow.map((j) => j.batch),
    },
    gc,
    insertsPerJob: round(inserts.length / Math.max(1, stages.jobs.length)),
    jobsInLeasingInserts: jobs.filter((j) => j.leasing).length,
    jobsLeasedByInsert: jobs.filter((j) => j.leased).length,
    // The stamps themselves (BENCH_STAGES_RAW=1), for reading one run further.
    ...(process.env.BENCH_STAGES_RAW === '1' ? { raw: { jobs, inserts, gcs: stages.gc } } : {}),
  };
}

/** SQLite: the group commit's stages (stage-trace-sqlite.mjs). */
function sqliteBreakdown(stages, sentAt, written) {
  const jobs = stages.jobs
    .map((j, i) => ({ ...j, sent: sentAt[i], written: written.get(sentAt[i]) }))
    .filter((j) => j.written !== undefined && j.commit !== undefined && j.req !== undefined && j.syncTo > 0);
  const inline = stages.syncs.filter((s) => s.kind === 'inline');
  for (const j of jobs) j.inlineInWay = overlap(j.written, j.begin, inline);
  const { table, slow, slowest1pct, gc } = tail(jobs, SQLITE_STAGES, stages.gc);
  const count = (list, f) => list.filter(f).length;
  const syncMs = (kind) => {
    const v = stages.syncs.filter((s) => s.kind === kind).map((s) => s.to - s.from).sort((a, b) => a - b);
    return { count: v.length, p50: round(pct(v, 50) ?? 0), p99: round(pct(v, 99) ?? 0), max: round(v[v.length - 1] ?? 0) };
  };
  const describe = (list) => ({
    leasedInItsBatch: count(list, (j) => j.sameBatch),
    syncInline: count(list, (j) => j.syncKind === 'inline'),
    syncOnPool: count(list, (j) => j.syncKind === 'pool'),
    behindASync: count(list, (j) => j.syncFrom - j.commit > 0.05),
  });
  return {
    jobs: jobs.length,
    stagesMs: table,
    slowest1pct: { ...slowest1pct, ...describe(slow) },
    all: describe(jobs),
    gc,
    loopDelayMs: stages.loop,
    syncsMs: { inline: syncMs('inline'), pool: syncMs('pool') },
    batchesPerJob: round(stages.batches.length / Math.max(1, stages.jobs.length)),
    ...(process.env.BENCH_STAGES_RAW === '1' ? { raw: { jobs, batches: stages.batches, syncs: stages.syncs, gcs: stages.gc } } : {}),
  };
}

/** Each stage's p50/p90/p99/max, and for the slowest 1 % which stage lay furthest above its median, and the GCs they overlapped. */
function tail(jobs, STAGES, gcs) {
  const PATH = pathOf(STAGES);
  const table = {};
  const medians = {};
  for (const [name, f] of Object.entries(STAGES)) {
    const v = jobs.map(f).filter(Number.isFinite).sort((a, b) => a - b);
    medians[name] = pct(v, 50);
    table[name] = { p50: round(pct(v, 50)), p90: round(pct(v, 90)), p99: round(pct(v, 99)), max: round(v[v.length - 1]) };
  }
  const total = STAGES['enqueue → start'];
  const slow = [...jobs].sort((a, b) => total(b) - total(a)).slice(0, Math.max(1, Math.ceil(jobs.length / 100)));
  const carriedBy = {};
  const extraBy = {};
  let withGc = 0;
  let gcMs = 0;
  for (const j of slow) {
    let worst = null;
    for (const name of PATH) {
      const extra = STAGES[name](j) - medians[name];
      extraBy[name] = (extraBy[name] ?? 0) + extra / slow.length;
      if (!worst || extra > worst.extra) worst = { name, extra };
    }
    carriedBy[worst.name] = (carriedBy[worst.name] ?? 0) + 1;
    const overlapping = gcs.filter((g) => g.at < j.started && g.at + g.ms > j.sent);
    if (overlapping.length > 0) withGc++;
    gcMs += overlapping.reduce((s, g) => s + g.ms, 0) / slow.length;
  }
  const gc = gcs.map((g) => g.ms).sort((a, b) => a - b);
  const slowest1pct = {
    jobs: slow.length,
    meanExtraMsByStage: Object.fromEntries(Object.entries(extraBy).map(([k, v]) => [k, round(v)])),
    carriedMostBy: carriedBy,
    overlappingGc: withGc,
    meanGcMs: round(gcMs),
  };
  return { table, slow, slowest1pct, gc: { count: gc.length, p50Ms: round(pct(gc, 50) ?? 0), maxMs: round(gc[gc.length - 1] ?? 0) } };
}

/** The breakdown as text lines for the console. */
export function formatBreakdown(b) {
  const lines = [`stages over ${b.jobs} jobs (ms): p50 / p90 / p99 / max`];
  for (const [name, s] of Object.entries(b.stagesMs)) lines.push(`  ${name.padEnd(40)} ${s.p50} / ${s.p90} / ${s.p99} / ${s.max}`);
  const s = b.slowest1pct;
  lines.push(`slowest ${s.jobs}: mean extra over each stage's median: ${JSON.stringify(s.meanExtraMsByStage)}`);
  if (b.syncsMs) {
    lines.push(`  carried most by: ${JSON.stringify(s.carriedMostBy)}; overlapping a GC: ${s.overlappingGc} (mean ${s.meanGcMs} ms)`);
    lines.push(`  leased in their insert's batch ${s.leasedInItsBatch}, synced inline ${s.syncInline} / on the pool ${s.syncOnPool}, behind a sync in flight ${s.behindASync} (all jobs: ${JSON.stringify(b.all)})`);
    lines.push(`syncs (ms): ${JSON.stringify(b.syncsMs)}; batches per job ${b.batchesPerJob}; event-loop delay ${JSON.stringify(b.loopDelayMs)}`);
    lines.push(`GCs: ${b.gc.count}, p50 ${b.gc.p50Ms} ms, max ${b.gc.maxMs} ms`);
    return lines.join('\n');
  }
  lines.push(`  carried most by: ${JSON.stringify(s.carriedMostBy)}; overlapping a GC: ${s.overlappingGc} (mean ${s.meanGcMs} ms); on a busy connection: ${s.onBusyConnection}`);
  lines.push(`  in a leasing insert: ${s.inLeasingInsert}; leased by it: ${s.leasedByInsert}`);
  lines.push(`GCs: ${b.gc.count}, p50 ${b.gc.p50Ms} ms, max ${b.gc.maxMs} ms; inserts per job ${b.insertsPerJob}; jobs in leasing inserts ${b.jobsInLeasingInserts}, leased by their insert ${b.jobsLeasedByInsert}`);
  return lines.join('\n');
}
