#!/usr/bin/env node
/**
 * What the SDK's transport costs the client, apart from any server: a canned
 * node:http server in a child process answers every POST with a fixed job,
 * and the client's CPU per call (`process.cpuUsage`) is measured for the
 * shipped SDK (`dist/sdk/client.js`, or the module given) and for the bench's
 * lean node:http client, one call in flight, alternating plain, SDK, SDK,
 * plain so drifting machine load hits both alike. A diagnostic, not part of
 * `npm run bench` (which has the same comparison against a real node).
 *
 *   node bench/sdk-overhead.mjs [--calls 3000] [--sdk path/to/client.js]
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { createClient as plainClient } from './lib/http.mjs';

const ANSWER = JSON.stringify({
  id: '123456', handler: 'sink', queue: 'default', state: 'queued', priority: 0, attempts: 0, maxAttempts: 3,
  payload: { i: 1 }, runAt: '2026-12-04T23:00:00.000Z', createdAt: '2026-12-04T23:00:00.000Z', created: true,
});

if (process.argv[2] === '--serve') {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(202, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(ANSWER) }).end(ANSWER));
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`));
} else {
  const { values } = parseArgs({ options: { calls: { type: 'string', default: '3000' }, sdk: { type: 'string' } } });
  const calls = Number(values.calls);
  const sdkPath = values.sdk ?? join(fileURLToPath(new URL('../dist/sdk/client.js', import.meta.url)));
  const { createClient } = await import(pathToFileURL(sdkPath).href);
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise((resolve) => child.stdout.once('data', (d) => resolve(Number(String(d).trim()))));
    const url = `http://127.0.0.1:${port}`;
    const plain = plainClient(url, { key: 'k', maxSockets: 16 });
    const sdk = createClient({ url, key: 'k' });
    let i = 0;
    const send = { plain: () => plain.post('/v1/jobs', { handler: 'sink', payload: { i: i++ } }), sdk: () => sdk.enqueue({ handler: 'sink', payload: { i: i++ } }) };
    const loop = async (n, f) => {
      for (let k = 0; k < n; k++) await f();
    };
    for (const name of ['plain', 'sdk']) await loop(1000, send[name]);
    const cpuUs = { plain: 0, sdk: 0 };
    for (const name of ['plain', 'sdk', 'sdk', 'plain', 'plain', 'sdk', 'sdk', 'plain']) {
      const before = process.cpuUsage();
      await loop(calls, send[name]);
      const used = process.cpuUsage(before);
      cpuUs[name] += used.user + used.system;
    }
    const per = (name) => cpuUs[name] / (calls * 4);
    process.stdout.write(`client CPU per call: plain node:http ${per('plain').toFixed(1)} µs, SDK ${per('sdk').toFixed(1)} µs, SDK / plain ${(per('sdk') / per('plain')).toFixed(2)}\n`);
    plain.close();
  } finally {
    child.kill();
  }
}
