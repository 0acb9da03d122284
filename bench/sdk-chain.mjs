#!/usr/bin/env node
/**
 * One SDK round trip, stage by stage, in wall time:
 *   node bench/sdk-chain.mjs [--engine sqlite|postgres] [--calls 16000] [--in-flight 16] [--dist DIR]
 *
 * A node of the build (in this process, listening on 127.0.0.1, its one
 * handler parked) and a child process that sends single `enqueue` calls
 * through the build's SDK, `--in-flight` callers in a closed loop, as
 * `api-enqueue-cpu.mjs --sdk` does. With 16 callers exactly one batch request
 * is in flight, so the marks below line up request by request. Both
 * processes stamp them on the machine's monotonic clock (lib/clock.mjs):
 *
 *   client  send     `req.end(body)` of the SDK's request
 *   node    request  the server's 'request' event (headers parsed)
 *           intake   `runtime.enqueueJobs` called (auth, body parse, validation done)
 *           queued   the intake batcher schedules its turn (a setImmediate made inside enqueueJobs)
 *           flushed  that turn runs
 *           stmt     the insert sent (PostgreSQL: `Client.query`; SQLite: the batch transaction begins)
 *           commit   SQLite only: the transaction committed, the WAL's fdatasync begins
 *           stored   the statement answered (PostgreSQL) / the fdatasync returned (SQLite)
 *           results  `enqueueJobs` resolved in the route
 *           end      `res.end` called (shaped, serialized)
 *   client  answer   the response's 'end' (body read)
 *           parsed   the SDK transport's `request` resolved (JSON.parse)
 *           first    the first of the next 16 `enqueue` calls
 *           last     the last of them
 *           flush    the coalescer's batch reaches the transport
 *           send     the next request's `req.end`
 *
 * and prints each stage's median and mean over the measured requests (the
 * means add up to the round trip's; the medians do not). `--sync off` (PostgreSQL, private experiment only) runs
 * the node's statements with `synchronous_commit = off` to see the commit's
 * share; never a setting to ship.
 */
import { fork } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { now } from './lib/clock.mjs';
import { BENCH_KEY as KEY, startParkedNode } from './lib/parked-node.mjs';
import { summarize } from './lib/stats.mjs';

const { values } = parseArgs({
  options: {
    engine: { type: 'string', default: 'sqlite' },
    calls: { type: 'string', default: '16000' },
    'in-flight': { type: 'string', default: '16' },
    dist: { type: 'string' },
    sync: { type: 'string' },
    client: { type: 'string' },
    'sdk-module': { type: 'string' },
  },
});
const dist = resolve(values.dist ?? fileURLToPath(new URL('../dist/', import.meta.url)));

if (values.client) await client();
else await main();

async function client() {
  const marks = { send: [], answer: [], flush: [], parsed: [], first: [], last: [] };
  const request = http.request;
  http.request = function (...args) {
    const req = request.apply(this, args);
    const end = req.end;
    req.end = function (...a) {
      marks.send.push(now());
      return end.apply(this, a);
    };
    req.prependOnceListener('response', (res) => res.prependOnceListener('end', () => marks.answer.push(now())));
    return req;
  };
  // The SDK's own steps: its transport's answer parsed and resolved, the callers' next calls, the flush.
  const { Transport } = await import(new URL('http.js', pathToFileURL(values['sdk-module'])).href);
  const transportRequest = Transport.prototype.request;
  Transport.prototype.request = function (...args) {
    marks.flush.push(now());
    return transportRequest.apply(this, args).then((value) => {
      marks.parsed.push(now());
      return value;
    });
  };
  const sdk = (await import(pathToFileURL(values['sdk-module']).href)).createClient({ url: values.client, key: KEY });
  let seq = 0;
  let calls = 0;
  process.on('message', async ({ count, inFlight }) => {
    for (const list of Object.values(marks)) list.length = 0;
    calls = 0;
    const cpu = process.cpuUsage();
    let next = 0;
    const lane = async () => {
      while (next < count) {
        next++;
        // The first and the last of the `inFlight` calls of a batch.
        if (calls % inFlight === 0) marks.first.push(now());
        if (calls % inFlight === inFlight - 1) marks.last.push(now());
        calls++;
        await sdk.enqueue({ handler: 'sink', payload: { i: seq++, kind: 'bench' } });
      }
    };
    await Promise.all(Array.from({ length: inFlight }, lane));
    const used = process.cpuUsage(cpu);
    process.send({ cpuUs: used.user + used.system, ...marks });
  });
  // Exit on its own when the parent lets go, so `--cpu-prof` gets written.
  process.on('disconnect', () => process.exit(0));
  process.send({ ready: true });
}

async function main() {
  const server = { request: [], intake: [], queued: [], flushed: [], stmt: [], commit: [], stored: [], results: [], end: [] };
  const requireDist = createRequire(join(dist, 'index.js'));
  if (values.engine === 'postgres') {
    const pg = requireDist('pg');
    const query = pg.Client.prototype.query;
    pg.Client.prototype.query = function (config, ...rest) {
      const insert = typeof config?.name === 'string' && config.name.startsWith('drover_enqueue_plain');
      if (!insert) return query.call(this, config, ...rest);
      server.stmt.push(now());
      // pg.Pool passes a callback; a bare client call gets a promise.
      const callback = rest.at(-1);
      if (typeof callback === 'function') {
        rest[rest.length - 1] = (...a) => {
          server.stored.push(now());
          return callback(...a);
        };
        return query.call(this, config, ...rest);
      }
      const result = query.call(this, config, ...rest);
      void result?.then?.(() => server.stored.push(now()), () => undefined);
      return result;
    };
    if (values.sync === 'off') {
      // Private experiment only, never to ship: the commit's share of the round trip. Added to the
      // startup options the engine sets (its search_path), which PGOPTIONS would not override.
      const connect = pg.Client.prototype.connect;
      pg.Client.prototype.connect = function (...args) {
        this.connectionParameters.options = `${this.connectionParameters.options ?? ''} -c synchronous_commit=off`;
        return connect.apply(this, args);
      };
    }
  } else {
    const Database = requireDist('better-sqlite3');
    const transaction = Database.prototype.transaction;
    Database.prototype.transaction = function (fn) {
      const t = transaction.call(this, fn);
      const wrapped = (...a) => t(...a);
      for (const kind of ['default', 'deferred', 'exclusive']) wrapped[kind] = t[kind];
      wrapped.immediate = (...a) => {
        server.stmt.push(now());
        return t.immediate(...a);
      };
      return wrapped;
    };
    const dataSync = fs.fdatasyncSync;
    fs.fdatasyncSync = (fd) => {
      server.commit.push(now());
      dataSync(fd);
      server.stored.push(now());
    };
    syncBuiltinESMExports();
  }
  const distUrl = pathToFileURL(`${dist}/`).href;
  const { resolveConfig } = await import(new URL('core/config.js', distUrl).href);
  const { startNode } = await import(new URL('node/start-node.js', distUrl).href);
  const { createLogger } = await import(new URL('obs/logger.js', distUrl).href);
  const parked = await startParkedNode({ resolveConfig, startNode, createLogger }, values.engine, { listen: true });
  const { node } = parked;
  const enqueueJobs = node.runtime.enqueueJobs;
  // The batcher's turn of the event loop: a setImmediate scheduled inside enqueueJobs, and when it ran.
  let inIntake = false;
  const setImmediateOf = globalThis.setImmediate;
  globalThis.setImmediate = (fn, ...a) => {
    if (!inIntake) return setImmediateOf(fn, ...a);
    server.queued.push(now());
    return setImmediateOf((...b) => {
      server.flushed.push(now());
      return fn(...b);
    }, ...a);
  };
  node.runtime.enqueueJobs = function (...args) {
    server.intake.push(now());
    inIntake = true;
    let out;
    try {
      out = enqueueJobs.apply(this, args);
    } finally {
      inIntake = false;
    }
    return out.then((r) => {
      server.results.push(now());
      return r;
    });
  };
  node.app.server.prependListener('request', (req, res) => {
    if (req.method !== 'POST') return;
    server.request.push(now());
    const end = res.end;
    res.end = function (...a) {
      server.end.push(now());
      return end.apply(this, a);
    };
  });
  const child = fork(fileURLToPath(import.meta.url), ['--client', node.url, '--sdk-module', join(dist, 'sdk/client.js')], { stdio: 'inherit' });
  await new Promise((ready) => child.once('message', ready));
  const run = (count) =>
    new Promise((done) => {
      child.once('message', done);
      child.send({ count, inFlight: Number(values['in-flight']) });
    });
  try {
    await run(4000); // warm-up
    for (const list of Object.values(server)) list.length = 0;
    const calls = Number(values.calls);
    const cpu = process.cpuUsage();
    const t0 = now();
    const answer = await run(calls);
    const wallMs = now() - t0;
    const used = process.cpuUsage(cpu);
    report(server, answer, calls, wallMs, used.user + used.system);
  } finally {
    child.disconnect();
    await parked.close();
  }
}

function report(server, answer, calls, wallMs, nodeCpuUs) {
  const { send, answer: got, parsed, first, last, flush } = answer;
  const n = Math.min(send.length - 1, server.request.length, server.end.length, got.length);
  const sqlite = values.engine === 'sqlite';
  const stages = [
    ['client write → node request event', (i) => server.request[i] - send[i]],
    ['request event → enqueueJobs (Fastify, auth, parse, validation)', (i) => server.intake[i] - server.request[i]],
    ['enqueueJobs → batcher schedules its turn (intake, store call)', (i) => server.queued[i] - server.intake[i]],
    ['batcher waits for its turn (setImmediate)', (i) => server.flushed[i] - server.queued[i]],
    ['turn → statement sent / transaction begins', (i) => server.stmt[i] - server.flushed[i]],
    ...(sqlite
      ? [
          ['transaction (statement, COMMIT without sync)', (i) => server.commit[i] - server.stmt[i]],
          ['WAL fdatasync', (i) => server.stored[i] - server.commit[i]],
        ]
      : [['statement round trip (execution + commit)', (i) => server.stored[i] - server.stmt[i]]]),
    ['stored → enqueueJobs resolved in the route', (i) => server.results[i] - server.stored[i]],
    ['resolved → res.end (shape, serialize, hooks)', (i) => server.end[i] - server.results[i]],
    ['res.end → client has the answer', (i) => got[i] - server.end[i]],
    ['answer → transport resolves (JSON.parse, promise hops)', (i) => parsed[i] - got[i]],
    ['→ first caller calls again (coalescer settles 16)', (i) => first[i + 1] - parsed[i]],
    ['→ last caller calls again (16 enqueue calls)', (i) => last[i + 1] - first[i + 1]],
    ['→ flush (nextTick, batch body joined)', (i) => flush[i + 1] - last[i + 1]],
    ['→ next request sent (http.request, headers, write)', (i) => send[i + 1] - flush[i + 1]],
    ['round trip (send → next send)', (i) => send[i + 1] - send[i]],
  ];
  const counts = Object.fromEntries(Object.entries(server).map(([k, v]) => [k, v.length]));
  process.stdout.write(`${values.engine}${values.sync ? ` sync=${values.sync}` : ''}: ${calls} calls, ${send.length} requests (${(calls / send.length).toFixed(1)} jobs a request), ${Math.round(calls / (wallMs / 1000))} jobs/s; CPU µs/job node ${(nodeCpuUs / calls).toFixed(1)}, client ${(answer.cpuUs / calls).toFixed(1)}; marks ${JSON.stringify(counts)}\n`);
  const aligned = server.stmt.length === server.request.length && server.stored.length === server.request.length;
  if (!aligned) process.stdout.write('warning: statements and requests do not pair one to one; the stages around the statement are approximate\n');
  const micros = (of) => Array.from({ length: n }, (_, i) => of(i) * 1000);
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const roundMean = mean(micros(stages.at(-1)[1]));
  process.stdout.write(`${'stage'.padEnd(64)} median µs   mean µs   share of the mean round trip (means add up)\n`);
  for (const [label, of] of stages) {
    const xs = micros(of);
    process.stdout.write(`${label.padEnd(64)} ${summarize(xs).median.toFixed(1).padStart(9)} ${mean(xs).toFixed(1).padStart(9)}   ${((100 * mean(xs)) / roundMean).toFixed(0).padStart(3)} %\n`);
  }
}
