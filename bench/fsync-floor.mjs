#!/usr/bin/env node
/**
 * The disk's own floor under a SQLite commit: a 4 KiB write (one WAL frame's
 * size) and an `fdatasync` of the same descriptor, in a loop, on the
 * filesystem the bench's stores use (os.tmpdir()). No SQLite, no Drover: what
 * is left of enqueue→start's tail once this is taken away is the runtime's.
 *
 *   node bench/fsync-floor.mjs [--count 3000] [--every 5] [--dir /tmp]
 *   node bench/fsync-floor.mjs --beside [--count 400]
 *
 * `--every`: ms between syncs (5 = the latency workload's 200 jobs/s; 0 = back
 * to back). Writes wrap at 4 MiB, as a WAL is reset after a checkpoint.
 * Prints the write and the fdatasync distributions (ms) and the machine's load.
 *
 * `--beside`: a page written 0.3 ms after another's sync began (on the thread
 * pool), made durable either by waiting for that sync and then syncing (one
 * sync out at a time) or by a second sync at once, through a second
 * descriptor (two out: group-commit.ts `DeferredSync.slots`); the two
 * alternated, `--count` of each. Prints the second write's wait for each.
 */
import { closeSync, fdatasync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { now, sleep } from './lib/clock.mjs';
import { measureLoad } from './lib/machine.mjs';
import { distribution } from './lib/stats.mjs';

const { values } = parseArgs({ options: { count: { type: 'string', default: '3000' }, every: { type: 'string', default: '5' }, dir: { type: 'string', default: tmpdir() }, beside: { type: 'boolean', default: false } } });
const count = Number(values.count);
const every = Number(values.every);
const dir = mkdtempSync(join(values.dir, 'fsync-floor-'));
const fd = openSync(join(dir, 'wal'), 'w');
const page = Buffer.alloc(4096, 7);
const WRAP = 4 * 1024 * 1024;
const writes = [];
const syncs = [];
const load = measureLoad();
const round = (d) => Object.fromEntries(Object.entries(d).map(([k, v]) => [k, Math.round(v * 1000) / 1000]));
if (values.beside) {
  const second = openSync(join(dir, 'wal'), 'r');
  const sync = (d) => new Promise((resolve, reject) => fdatasync(d, (error) => (error ? reject(error) : resolve())));
  let offset = 0;
  const write = () => {
    writeSync(fd, page, 0, page.length, offset);
    offset = (offset + page.length) % WRAP;
  };
  const behind = [];
  const beside = [];
  try {
    for (let i = 0; i < count; i++) {
      for (const mode of i % 2 ? ['beside', 'behind'] : ['behind', 'beside']) {
        write();
        const first = sync(fd);
        await sleep(0.3);
        write();
        const at = now();
        if (mode === 'behind') await first.then(() => sync(fd));
        else await sync(second);
        (mode === 'behind' ? behind : beside).push(now() - at);
        await first;
        await sleep(3);
      }
    }
  } finally {
    closeSync(second);
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(JSON.stringify({ dir: values.dir, count, behindMs: round(distribution(behind)), besideMs: round(distribution(beside)), load: load() }));
  process.exit(0);
}
try {
  let offset = 0;
  const t0 = now();
  for (let i = 0; i < count; i++) {
    const wait = t0 + i * every - now();
    if (wait > 0.5) await sleep(wait);
    const a = now();
    writeSync(fd, page, 0, page.length, offset);
    const b = now();
    fdatasyncSync(fd);
    const c = now();
    writes.push(b - a);
    syncs.push(c - b);
    offset = (offset + page.length) % WRAP;
  }
} finally {
  closeSync(fd);
  rmSync(dir, { recursive: true, force: true });
}
console.log(JSON.stringify({ dir: values.dir, count, everyMs: every, writeMs: round(distribution(writes)), fdatasyncMs: round(distribution(syncs)), load: load() }));
