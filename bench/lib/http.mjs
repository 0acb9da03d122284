/**
 * A lean keep-alive HTTP/1.1 client (node:http, no fetch): the bench shares
 * the machine with the system under test, so the client should cost little.
 */
import http from 'node:http';

export function createClient(baseUrl, { key, maxSockets = 16 } = {}) {
  const url = new URL(baseUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets });
  const auth = key ? { authorization: `Bearer ${key}` } : {};

  function request(method, path, body) {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const headers = { ...auth, ...(data === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) }) };
    return new Promise((resolve, reject) => {
      const req = http.request({ host: url.hostname, port: url.port, path, method, agent, headers }, (res) => {
        const chunks = [];
        res.on('data', (chunk) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(data);
    });
  }

  /** POST and insist on one of `expected` statuses; returns the raw response. */
  async function post(path, body, expected = [200, 202]) {
    const res = await request('POST', path, body);
    if (!expected.includes(res.status)) throw new Error(`POST ${path} answered ${res.status}: ${res.text.slice(0, 500)}`);
    return res;
  }

  async function getJson(path) {
    const res = await request('GET', path);
    if (res.status !== 200) throw new Error(`GET ${path} answered ${res.status}: ${res.text.slice(0, 500)}`);
    return JSON.parse(res.text);
  }

  return { post, getJson, request, close: () => agent.destroy() };
}
