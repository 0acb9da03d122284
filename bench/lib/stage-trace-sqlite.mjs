/**
 * BENCH_STAGES=1 on SQLite (imported by stage-trace.mjs, in the worker): each
 * latency job's path through the engine's group commit (src/store/sqlite
 * group-commit.ts, wal-sync.ts), stamped on the monotonic clock without
 * touching the product's code:
 *
 *   submit   the insert's op handed to the group commit (`GroupCommit.submit`)
 *   begin    its batch's BEGIN IMMEDIATE ran (the setImmediate turn came)
 *   commit   its batch's COMMIT returned (the WAL frames written, not synced)
 *   syncFrom the WAL fdatasync covering it started (inline or on the pool)
 *   syncTo   … returned (the pool's: its callback ran on the event loop)
 *   syncKind 'inline' (`fdatasyncSync`, the loop stands still) or 'pool'
 *   leaseSubmit / leaseBegin / leaseCommit  the lease that took the job
 *   sameBatch  whether that lease rode in the insert's batch
 *
 * plus every batch (begin, commit, what ran in it) and every sync, so a job's
 * wait can be set against what else held the event loop. Statements are seen
 * through better-sqlite3's `Statement.prototype.run`, the syncs through
 * `node:fs` (its ESM named exports re-synced).
 */
import fs from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';

const now = () => Number(process.hrtime.bigint()) / 1e6;
const SENT = /"sent":([0-9.eE+-]+)/;

/**
 * @param {{ bySent: Map<number, object>, batches?: object[], syncs?: object[] }} stages shared with stage-trace.mjs
 * @param {(sent: number) => object} row the job's stamps, made at first use
 */
export async function traceSqlite(stages, row) {
  const require = createRequire(new URL('../../package.json', import.meta.url));
  let Database;
  try {
    Database = require('better-sqlite3');
  } catch {
    return;
  }
  const { GroupCommit } = await import(new URL('../../dist/store/sqlite/group-commit.js', import.meta.url).href);
  stages.batches = [];
  stages.syncs = [];
  const sentById = new Map();

  // The op runs inside its batch: the statements it runs learn its submit time from here.
  let submitAt = 0;
  let batch = null;
  const submit = GroupCommit.prototype.submit;
  GroupCommit.prototype.submit = function (op, mode) {
    const at = now();
    // What rode in each batch: leases (answered at commit), settles (feed nothing), the rest (intake, marks…).
    // The settle queue's mode says whether it feeds once its op has run (settle-queue.ts).
    const timed = (own, b) => {
      submitAt = at;
      try {
        return op(own, b);
      } finally {
        submitAt = 0;
        if (batch) batch[mode?.atCommit ? 'leases' : mode && !mode.feeds ? 'settles' : 'writes']++;
      }
    };
    return submit.call(this, timed, mode);
  };

  const probe = new Database(':memory:');
  const Statement = Object.getPrototypeOf(probe.prepare('SELECT 1'));
  probe.close();
  const run = Statement.run;
  Statement.run = function (...args) {
    const source = this.source;
    if (source === 'BEGIN IMMEDIATE') {
      batch = { begin: now(), commit: 0, inserts: 0, leased: 0, other: 0, leases: 0, settles: 0, writes: 0 };
      return run.apply(this, args);
    }
    if (source === 'COMMIT' && batch) {
      const result = run.apply(this, args);
      batch.commit = now();
      stages.batches.push(batch);
      batch = null;
      return result;
    }
    const result = run.apply(this, args);
    if (!batch) return result;
    if (source.startsWith('INSERT INTO jobs')) {
      batch.inserts++;
      const flat = args.length === 1 && Array.isArray(args[0]) ? args[0] : args;
      const sents = flat.filter((v) => typeof v === 'string' && v.includes('"sent":')).map((v) => Number(v.match(SENT)[1]));
      const last = Number(result.lastInsertRowid);
      sents.forEach((sent, i) => {
        sentById.set(last - sents.length + 1 + i, sent);
        Object.assign(row(sent), { submit: submitAt, begin: batch.begin, batchRef: batch });
      });
    } else if (source.includes("SET state = 'running'") && result.changes > 0) {
      batch.leased++;
      const sent = sentById.get(Number(args[args.length - 1]));
      if (sent !== undefined) Object.assign(row(sent), { leaseSubmit: submitAt, leaseBatchRef: batch });
    } else if (!source.startsWith('SAVEPOINT') && !source.startsWith('RELEASE')) batch.other++;
    return result;
  };

  // The WAL syncs (wal-sync.ts): inline on the event loop, or on libuv's pool.
  const fdatasyncSync = fs.fdatasyncSync;
  fs.fdatasyncSync = function (fd) {
    const from = now();
    try {
      return fdatasyncSync(fd);
    } finally {
      stages.syncs.push({ from, to: now(), kind: 'inline' });
    }
  };
  const fdatasync = fs.fdatasync;
  fs.fdatasync = function (fd, callback) {
    const from = now();
    return fdatasync(fd, (...rest) => {
      stages.syncs.push({ from, to: now(), kind: 'pool' });
      callback(...rest);
    });
  };
  syncBuiltinESMExports();
}

/** After the run: each job's batch, lease and covering sync, as plain numbers (the report is JSON). */
export function settleSqlite(stages, jobs) {
  if (!stages.batches) return;
  const syncs = [...stages.syncs].sort((a, b) => a.from - b.from);
  const covering = (commit) => syncs.find((s) => s.from >= commit);
  for (const j of jobs) {
    const b = j.batchRef;
    if (!b) continue;
    const sync = covering(b.commit);
    Object.assign(j, { commit: b.commit, batchOps: b.inserts + b.leased + b.other, syncFrom: sync?.from ?? 0, syncTo: sync?.to ?? 0, syncKind: sync?.kind ?? 'none' });
    const l = j.leaseBatchRef;
    if (l) Object.assign(j, { sameBatch: l === b, leaseBegin: l.begin, leaseCommit: l.commit });
    delete j.batchRef;
    delete j.leaseBatchRef;
  }
}
