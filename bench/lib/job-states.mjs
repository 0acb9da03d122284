/**
 * Job state changes as the node pushes them (`GET /v1/stream`, Server-Sent
 * Events), timed on arrival: the durable bench measures "request sent → job
 * running/succeeded" without polling the node it measures. A change that
 * arrived before anyone waited for it is kept, so a fast job cannot be missed;
 * `after` picks a later one (a job runs again after it was woken).
 */
import http from 'node:http';
import { now } from './clock.mjs';

/**
 * @param {string} baseUrl
 * @param {{ key: string, handlers: string[] }} options
 * @returns {Promise<{ waitFor(jobId: string, state: string, options?: { after?: number, timeoutMs?: number }): Promise<number>, close(): void }>}
 */
export function watchJobStates(baseUrl, { key, handlers }) {
  const url = new URL(`/v1/stream?handler=${handlers.join(',')}`, baseUrl);
  const seen = new Map(); // `${jobId} ${state}` -> arrival times
  const waiters = new Map(); // same key -> { after, resolve }
  return new Promise((resolve, reject) => {
    const request = http.get({ host: url.hostname, port: url.port, path: url.pathname + url.search, headers: { authorization: `Bearer ${key}`, accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`GET /v1/stream answered ${res.statusCode}`));
      res.setEncoding('utf8');
      let buffered = '';
      res.on('data', (chunk) => {
        const at = now();
        buffered += chunk;
        let end;
        while ((end = buffered.indexOf('\n\n')) >= 0) {
          const frame = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          const data = /^data: (.*)$/m.exec(frame)?.[1];
          if (!/^event: job$/m.test(frame) || !data) continue;
          const { id, state } = JSON.parse(data);
          const k = `${id} ${state}`;
          seen.set(k, [...(seen.get(k) ?? []), at]);
          const waiter = waiters.get(k);
          if (waiter && at >= waiter.after) {
            waiters.delete(k);
            waiter.resolve(at);
          }
        }
      });
      resolve({
        waitFor(jobId, state, { after = 0, timeoutMs = 30_000 } = {}) {
          const k = `${jobId} ${state}`;
          const earlier = (seen.get(k) ?? []).find((at) => at >= after);
          if (earlier !== undefined) return Promise.resolve(earlier);
          return new Promise((done, fail) => {
            const timer = setTimeout(() => fail(new Error(`job ${jobId} did not reach ${state} within ${timeoutMs} ms`)), timeoutMs);
            waiters.set(k, {
              after,
              resolve: (at) => {
                clearTimeout(timer);
                done(at);
              },
            });
          });
        },
        close: () => request.destroy(),
      });
    });
    request.on('error', reject);
  });
}
