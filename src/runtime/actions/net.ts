/**
 * Every outbound request of a built-in action goes through here: one HTTP
 * request (`sendRequest`) or a `fetch` for the MCP SDK (`guardedFetch`),
 * both through a DNS lookup that refuses private addresses (the SSRF guard).
 * The check runs on the addresses the socket actually connects to, at
 * connect time, so a name that resolved to a public address when the trigger
 * was created and to 169.254.169.254 now is still refused. IP-literal hosts
 * (which skip DNS) are checked before the request.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { lookup as dnsLookupAll } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { Readable } from 'node:stream';
import { DroverError } from '../../core/errors.js';
import { isForbiddenAddress } from '../ssrf.js';

/** Thrown when a target resolves to an address the guard refuses; never retried. */
export class ForbiddenTargetError extends Error {
  readonly code = 'ERR_DROVER_FORBIDDEN_TARGET';
  constructor(host: string, address: string) {
    super(`action target ${host} resolves to ${address}, a loopback, private, link-local or metadata address; set webhooks.allowPrivateNetworks to allow it`);
    this.name = 'ForbiddenTargetError';
  }
}

/**
 * Refuse a trigger whose target is forbidden when it is created (422
 * `forbidden-target`), so the mistake shows up at once and not as dead jobs:
 * an IP literal in any spelling the URL parser accepts (decimal, octal, hex
 * and short IPv4, IPv6 forms that embed IPv4), or a name that resolves to a
 * forbidden address now. A name that does not resolve yet is accepted; every
 * delivery checks again when it connects (`guardedLookup`).
 */
const CREATE_LOOKUP_MS = 2_000;

export async function assertAllowedTarget(url: URL, field = 'action.url'): Promise<void> {
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const refuse = (address: string) =>
    new DroverError('forbidden_target', `${field}: ${host} ${address === host ? 'is' : `resolves to ${address}, which is`} a loopback, private, link-local or metadata address; set webhooks.allowPrivateNetworks to allow it`, { extensions: { address } });
  if (isIP(host) !== 0) {
    if (isForbiddenAddress(host)) throw refuse(host);
    return;
  }
  let addresses: LookupAddress[];
  let timer: NodeJS.Timeout | undefined;
  try {
    // A slow resolver must not hold the API request: past the bound, the delivery-time check decides.
    const late = new Promise<LookupAddress[]>((resolve) => (timer = setTimeout(() => resolve([]), CREATE_LOOKUP_MS)));
    addresses = await Promise.race([dnsLookupAll(host, { all: true }), late]);
  } catch {
    return; // not resolvable now; judged again at every delivery
  } finally {
    clearTimeout(timer);
  }
  const bad = addresses.find((a) => isForbiddenAddress(a.address));
  if (bad) throw refuse(bad.address);
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** A `lookup` for node:http(s) that refuses forbidden addresses (all of them are checked, whichever is used). */
export function guardedLookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error, []);
    const bad = addresses.find((a) => isForbiddenAddress(a.address));
    if (bad) return callback(Object.assign(new ForbiddenTargetError(hostname, bad.address), { errno: undefined }), []);
    const first = addresses[0];
    if (!first) return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }), []);
    if (options.all) callback(null, addresses);
    else callback(null, first.address, first.family);
  });
}

export interface OutboundRequest {
  url: string;
  method?: string;
  /** Absent for a request without a body (GET, DELETE). */
  body?: string;
  headers: Record<string, string>;
  timeoutMs: number;
  allowPrivateNetworks: boolean;
  signal?: AbortSignal;
  /** Most characters of the answer kept (default 512: enough for an error message). */
  maxBodyChars?: number;
}

/** Most of a response body kept by default (for the error message). */
const BODY_SNIPPET = 512;

/** The IP-literal check: a literal host skips the lookup, so it is judged here. */
function refuseLiteral(url: URL, allowPrivateNetworks: boolean): ForbiddenTargetError | null {
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return !allowPrivateNetworks && isIP(host) !== 0 && isForbiddenAddress(host) ? new ForbiddenTargetError(host, host) : null;
}

/** Send one request; resolves with the status (any), rejects on connection errors, the guard and the timeout. */
export function sendRequest(request: OutboundRequest): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  const url = new URL(request.url);
  const refused = refuseLiteral(url, request.allowPrivateNetworks);
  if (refused) return Promise.reject(refused);
  const client = url.protocol === 'https:' ? https : http;
  const limit = request.maxBodyChars ?? BODY_SNIPPET;
  return new Promise((resolve, reject) => {
    const req = client.request(url, {
      method: request.method ?? 'POST',
      headers: request.body === undefined ? request.headers : { ...request.headers, 'content-length': Buffer.byteLength(request.body) },
      ...(request.allowPrivateNetworks ? {} : { lookup: guardedLookup as unknown as typeof dnsLookup }),
      ...(request.signal ? { signal: request.signal } : {}),
      agent: false,
    });
    const timer = setTimeout(() => req.destroy(new Error(`request timed out after ${request.timeoutMs} ms`)), request.timeoutMs);
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < limit) body += chunk.slice(0, limit - body.length);
      });
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, body, headers: res.headers });
      });
      res.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    req.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    req.end(request.body);
  });
}

/**
 * A `fetch` over node:http with the same guard, for clients that take a
 * fetch (the MCP SDK's Streamable HTTP transport). The answer streams, so an
 * SSE response works; statuses without a body get none.
 *
 * @example
 * new StreamableHTTPClientTransport(url, { fetch: guardedFetch(false) });
 */
export function guardedFetch(allowPrivateNetworks: boolean): (input: string | URL, init?: RequestInit) => Promise<Response> {
  return (input, init = {}) => {
    const url = new URL(String(input));
    const refused = refuseLiteral(url, allowPrivateNetworks);
    if (refused) return Promise.reject(refused);
    const client = url.protocol === 'https:' ? https : http;
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((value, name) => (headers[name] = value));
    const body = typeof init.body === 'string' ? init.body : undefined;
    if (init.body !== undefined && init.body !== null && body === undefined) return Promise.reject(new TypeError('guardedFetch sends string bodies only'));
    return new Promise((resolve, reject) => {
      const req = client.request(url, {
        method: init.method ?? 'GET',
        headers: body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        ...(allowPrivateNetworks ? {} : { lookup: guardedLookup as unknown as typeof dnsLookup }),
        ...(init.signal ? { signal: init.signal } : {}),
        agent: false,
      });
      req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        const answer = new Headers();
        for (const [name, value] of Object.entries(res.headers)) {
          if (value !== undefined) for (const v of [value].flat()) answer.append(name, v);
        }
        const empty = status === 204 || status === 205 || status === 304 || init.method === 'HEAD';
        if (empty) res.resume();
        resolve(new Response(empty ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), { status, statusText: res.statusMessage ?? '', headers: answer }));
      });
      req.on('error', reject);
      req.end(body);
    });
  };
}
