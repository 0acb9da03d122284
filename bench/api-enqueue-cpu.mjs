#!/usr/bin/env node
/**
 * Server CPU per enqueue request and per job on `POST /v1/jobs`, in process:
 *   node bench/api-enqueue-cpu.mjs [--engine sqlite|postgres|both] [--shapes 1,16,500] [--requests 4000] [--in-flight 16] [--socket] [--sync NORMAL] [--rounds 3] [--blocks 10] [--dist DIR [--dist DIR2]] [--profile FILE]
 *
 * A real node (startNode, `listen: false` unless --socket) on a temp SQLite
 * file or a throwaway PostgreSQL schema, its one handler (`sink`, concurrency
 * 1) holding its only slot, so what is measured is intake: route, auth,
 * validation, serialisation, runtime and store, plus what the node does
 * around them (wakes, metrics). As the bench's intake worker, the per-key
 * rate limit is off and the queue's maxDepth raised (the runs exceed both by
 * design); logs at info to /dev/null. For each shape (jobs per request) it sends a
 * warm-up, then `--requests` requests (fewer for big batches: about the same
 * number of jobs), `--in-flight` at a time, and prints the process CPU
 * (`process.cpuUsage`) per request and per job.
 *
 * Default: `app.inject` (no socket), so the client's side (light-my-request)
 * is in the numbers too, alike for every build. `--socket`: the node listens
 * on 127.0.0.1 and a child process sends the requests over keep-alive
 * `node:http`, so this process's CPU is the server's alone (HTTP parsing and
 * writing included). `--dist DIR` runs another build; given twice, both run in
 * this process, one node each, taking turns in `--blocks` blocks per shape and
 * round (A/B under the same machine load), with medians over `--rounds`.
 * `--profile FILE`: a V8 CPU profile of the measured loops only (warm-ups and
 * startup left out), for `node bench/lib/cpuprofile.mjs FILE`.
 *
 * `--sdk` (implies `--socket`, shape 1): the child sends single enqueues
 * through the build's SDK (`drover/client` `enqueue`), which coalesces the
 * calls of one tick into batch requests; the lines then add the client's CPU
 * per job and the jobs per request the server saw. `--server-cpu`
 * (PostgreSQL on this machine): the CPU of the node's backends per job too
 * (lib/pg-backend-cpu.mjs). So one SDK enqueue's CPU splits into client,
 * node and database:
 *   node bench/api-enqueue-cpu.mjs --engine postgres --sdk --server-cpu --in-flight 16 [--dist A --dist B]
 */
import { fork } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import http from 'node:http';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { BENCH_KEY as KEY, BENCH_PG_URL as PG_URL, startParkedNode } from './lib/parked-node.mjs';
import { backendCpu, usedBetween } from './lib/pg-backend-cpu.mjs';

const { values } = parseArgs({
  options: {
    engine: { type: 'string', default: 'sqlite' },
    shapes: { type: 'string', default: '1,16,500' },
    requests: { type: 'string', default: '4000' },
    'in-flight': { type: 'string', default: '16' },
    socket: { type: 'boolean', default: false },
    dist: { type: 'string', multiple: true, default: [] },
    rounds: { type: 'string', default: '1' },
    blocks: { type: 'string', default: '10' },
    sync: { type: 'string' },
    client: { type: 'string' },
    sdk: { type: 'boolean', default: false },
    'sdk-module': { type: 'string' },
    'server-cpu': { type: 'boolean', default: false },
    profile: { type: 'string' },
  },
});

/** Closed loop: `count` calls of `send`, `inFlight` at a time. */
async function closedLoop(count, inFlight, send) {
  let next = 0;
  const lane = async () => {
    while (next < count) {
      next++;
      await send();
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, lane));
}

let seq = 0;
function bodyOf(jobs) {
  if (jobs === 1) return JSON.stringify({ handler: 'sink', payload: { i: seq++, kind: 'bench' } });
  return JSON.stringify({ jobs: Array.from({ length: jobs }, () => ({ handler: 'sink', payload: { i: seq++, kind: 'bench' } })) });
}

// The client role (--socket): a child process sending over keep-alive node:http; told what to send over IPC.
if (values.client) {
  const url = new URL(values.client);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const post = (body) =>
    new Promise((resolvePost, reject) => {
      const req = http.request(
        { host: url.hostname, port: url.port, path: '/v1/jobs', method: 'POST', agent, headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
        (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 202 ? resolvePost() : reject(new Error(`status ${res.statusCode}`))));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  // --sdk: single calls through the build's SDK, which batches the calls of a tick itself.
  const sdk = values['sdk-module'] ? (await import(pathToFileURL(values['sdk-module']).href)).createClient({ url: values.client, key: KEY }) : null;
  const call = sdk ? () => sdk.enqueue({ handler: 'sink', payload: { i: seq++, kind: 'bench' } }) : (jobs) => post(bodyOf(jobs));
  process.on('message', async ({ jobs, count, inFlight }) => {
    const cpu = process.cpuUsage();
    await closedLoop(count, inFlight, () => call(jobs));
    const used = process.cpuUsage(cpu);
    process.send({ done: true, cpuUs: used.user + used.system });
  });
  process.send({ ready: true });
} else {
  await main();
}

async function main() {
  const dists = (values.dist.length > 0 ? values.dist : [fileURLToPath(new URL('../dist/', import.meta.url))]).map((d) => resolve(d));
  const builds = [];
  for (const [index, dir] of dists.entries()) {
    const dist = pathToFileURL(`${dir}/`).href;
    builds.push({
      label: dists.length > 1 ? `${String.fromCharCode(65 + index)}:${dir}` : dir,
      dir,
      resolveConfig: (await import(new URL('core/config.js', dist).href)).resolveConfig,
      startNode: (await import(new URL('node/start-node.js', dist).href)).startNode,
      createLogger: (await import(new URL('obs/logger.js', dist).href)).createLogger,
    });
  }
  const engines = values.engine === 'both' ? ['sqlite', 'postgres'] : [values.engine];
  if (values.sdk) values.socket = true;
  const shapes = values.sdk ? [1] : values.shapes.split(',').map(Number);
  let admin = null;
  if (values['server-cpu'] && engines.includes('postgres')) {
    const { default: pg } = await import('pg');
    admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
  }
  const requests = Number(values.requests);
  const inFlight = Number(values['in-flight']);
  const rounds = Number(values.rounds);
  const blocksWanted = Number(values.blocks);
  const profiler = values.profile ? new Session() : null;
  if (profiler) {
    profiler.connect();
    await profiler.post('Profiler.enable');
  }
  let profiled = null;

  for (const engine of engines) {
    const nodes = [];
    try {
      for (const build of builds) nodes.push(await startBenchNode(build, engine));
      const results = new Map();
      for (let round = 0; round < rounds; round++) {
        for (const jobs of shapes) {
          // About as many jobs per shape as `requests` singles, at least 20 requests.
          const count = Math.max(20, Math.round(requests / Math.sqrt(jobs)));
          const flight = jobs >= 100 ? Math.min(inFlight, 2) : inFlight;
          // Alternate which build goes first, so a drift in the machine's load hits both alike.
          const order = round % 2 === 0 ? nodes : [...nodes].reverse();
          for (const node of order) await node.send(jobs, Math.max(10, Math.round(count / 2)), flight); // warm-up
          // The measured requests in `--blocks` blocks, the builds taking turns block by block: load that
          // other processes put on the machine changes within seconds, and so hits every build alike.
          const totals = new Map(nodes.map((node) => [node, { user: 0, system: 0, ms: 0, count: 0, clientUs: 0, requests: 0, dbNs: 0 }]));
          const blocks = Math.max(1, Math.min(blocksWanted, count));
          for (let block = 0; block < blocks; block++) {
            const size = Math.round(((block + 1) * count) / blocks) - Math.round((block * count) / blocks);
            for (const node of block % 2 === 0 ? order : [...order].reverse()) {
              if (profiler) await profiler.post('Profiler.start');
              const db = admin && node.schema ? await backendCpu(admin, node.schema) : null;
              const requests = node.requests;
              const cpu = process.cpuUsage();
              const started = performance.now();
              const answer = await node.send(jobs, size, flight);
              const used = process.cpuUsage(cpu);
              if (profiler) profiled = mergeProfile(profiled, (await profiler.post('Profiler.stop')).profile);
              const total = totals.get(node);
              total.clientUs += answer?.cpuUs ?? 0;
              total.requests += node.requests - requests;
              if (db) total.dbNs += usedBetween(db, await backendCpu(admin, node.schema));
              total.user += used.user;
              total.system += used.system;
              total.ms += performance.now() - started;
              total.count += size;
            }
          }
          for (const node of nodes) {
            const { user, system, ms, clientUs, requests, dbNs } = totals.get(node);
            const us = user + system;
            const key = `${engine} ${values.sdk ? 'sdk' : values.socket ? 'socket' : 'inject'} jobs/request=${jobs} ${node.label}`;
            if (!results.has(key)) results.set(key, []);
            const calls = count * jobs;
            results.get(key).push({ request: us / count, job: us / calls, round, jobs, build: node.label, client: clientUs / calls, db: dbNs / 1000 / calls });
            // With --sdk a "request" below is one call: the server saw `calls / requests` jobs a request.
            const sdkParts = values.sdk ? `; client ${(clientUs / calls).toFixed(1)} µs/job, ${(calls / requests).toFixed(1)} jobs a request` : '';
            const dbPart = dbNs > 0 ? `; database ${(dbNs / 1000 / calls).toFixed(1)} µs/job` : '';
            process.stdout.write(
              `${key} requests=${count} in-flight=${flight}: ${(us / count).toFixed(1)} µs/request ${(us / calls).toFixed(1)} µs/job ` +
                `(system ${Math.round((100 * system) / us)} %, ${Math.round(calls / (ms / 1000))} jobs/s)${sdkParts}${dbPart}\n`,
            );
          }
        }
      }
      if (rounds > 1) {
        process.stdout.write(`medians of ${rounds} rounds:\n`);
        for (const [key, runs] of results) {
          const parts = `${values.sdk ? `, client ${median(runs.map((r) => r.client)).toFixed(1)}` : ''}${admin ? `, database ${median(runs.map((r) => r.db)).toFixed(1)}` : ''}`;
          process.stdout.write(`  ${key}: ${median(runs.map((r) => r.request)).toFixed(1)} µs/request ${median(runs.map((r) => r.job)).toFixed(1)} µs/job${parts}\n`);
        }
        if (nodes.length === 2) {
          // Each round's B/A ratio: the two ran back to back, so a drift in the machine's load mostly cancels.
          const all = [...results.values()].flat();
          for (const jobs of shapes) {
            const ratios = [];
            for (let round = 0; round < rounds; round++) {
              const [a, b] = nodes.map((node) => all.find((r) => r.round === round && r.jobs === jobs && r.build === node.label));
              ratios.push(b.request / a.request);
            }
            process.stdout.write(`  ${engine} jobs/request=${jobs}: B/A median ${median(ratios).toFixed(3)} (rounds: ${ratios.map((r) => r.toFixed(2)).join(' ')})\n`);
          }
        }
      }
    } finally {
      for (const node of nodes) await node.close();
    }
  }
  await admin?.end();
  if (profiler) {
    writeFileSync(values.profile, JSON.stringify(profiled));
    profiler.disconnect();
  }
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** A node of `build` on a fresh store, its one handler parked on its only slot (lib/parked-node.mjs); `send` posts to it. */
async function startBenchNode(build, engine) {
  const parked = await startParkedNode(build, engine, { listen: values.socket, sync: values.sync });
  const { node } = parked;
  let client = null;
  let send;
  if (values.socket) {
    const sdkModule = values.sdk ? ['--sdk-module', join(build.dir, 'sdk/client.js')] : [];
    client = fork(fileURLToPath(import.meta.url), ['--client', node.url, ...sdkModule], { stdio: 'inherit' });
    await new Promise((ready) => client.once('message', ready));
    send = (jobs, count, flight) =>
      new Promise((done) => {
        client.once('message', done);
        client.send({ jobs, count, inFlight: flight });
      });
  } else {
    const headers = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
    const post = async (jobs) => {
      const response = await node.app.inject({ method: 'POST', url: '/v1/jobs', headers, payload: bodyOf(jobs) });
      if (response.statusCode !== 202) throw new Error(`status ${response.statusCode}: ${response.body}`);
    };
    send = (jobs, count, flight) => closedLoop(count, flight, () => post(jobs));
  }
  const counted = { label: build.label, schema: parked.schema, requests: 0 };
  // Requests the server saw (with --sdk, fewer than the calls: the SDK batches them).
  if (values.socket) node.app.server.on('request', () => counted.requests++);
  return Object.assign(counted, {
    send,
    async close() {
      client?.kill();
      await parked.close();
    },
  });
}

/** The loops' profiles as one: the later one's nodes and samples appended under fresh ids. */
function mergeProfile(into, next) {
  if (!into) return next;
  const offset = Math.max(...into.nodes.map((n) => n.id));
  for (const node of next.nodes) {
    into.nodes.push({ ...node, id: node.id + offset, ...(node.children ? { children: node.children.map((c) => c + offset) } : {}) });
  }
  into.samples.push(...next.samples.map((id) => id + offset));
  into.timeDeltas.push(...next.timeDeltas.map((d, i) => (i === 0 ? 0 : d)));
  into.endTime += next.endTime - next.startTime;
  return into;
}
