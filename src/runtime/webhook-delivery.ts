/**
 * One webhook delivery: POST a JSON body, signed, to a URL, through a DNS
 * lookup that refuses private addresses (the SSRF guard). The check runs on
 * the addresses the socket actually connects to, at connect time, so a name
 * that resolved to a public address when the trigger was created and to
 * 169.254.169.254 now is still refused. IP-literal hosts (which skip DNS)
 * are checked before the request.
 */
import { createHmac } from 'node:crypto';
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { lookup as dnsLookupAll } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { DroverError } from '../core/errors.js';
import { isForbiddenAddress } from './ssrf.js';

/** Thrown when a target resolves to an address the guard refuses; never retried. */
export class ForbiddenTargetError extends Error {
  readonly code = 'ERR_DROVER_FORBIDDEN_TARGET';
  constructor(host: string, address: string) {
    super(`webhook target ${host} resolves to ${address}, a loopback, private, link-local or metadata address; set webhooks.allowPrivateNetworks to allow it`);
    this.name = 'ForbiddenTargetError';
  }
}

/**
 * The signature header value of one delivery (`x-drover-signature`): for each
 * active secret, `v1=` + hex HMAC-SHA256 keyed with the secret over
 * `"<delivery id>.<timestamp>.<body>"`, separated by spaces. The delivery id
 * is signed because receivers deduplicate on it: an attacker who could change
 * it could make a receiver drop a real delivery or accept a replay as new.
 * Two secrets during a rotation give two signatures; a receiver accepts the
 * request when any one of them verifies with a secret it knows.
 *
 * @example
 * signWebhook(['whsec_old…', 'whsec_new…'], '42', 1700000000, '{"a":1}'); // 'v1=3b9c… v1=a07e…'
 */
export function signWebhook(secrets: readonly string[], deliveryId: string, timestamp: number, body: string): string {
  return secrets.map((secret) => `v1=${createHmac('sha256', secret).update(`${deliveryId}.${timestamp}.${body}`).digest('hex')}`).join(' ');
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

export async function assertAllowedTarget(url: URL): Promise<void> {
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const refuse = (address: string) =>
    new DroverError('forbidden_target', `action.url: ${host} ${address === host ? 'is' : `resolves to ${address}, which is`} a loopback, private, link-local or metadata address; set webhooks.allowPrivateNetworks to allow it`, { extensions: { address } });
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

export interface DeliveryRequest {
  url: string;
  body: string;
  headers: Record<string, string>;
  timeoutMs: number;
  allowPrivateNetworks: boolean;
  signal?: AbortSignal;
}

/** Most of a response body kept (for the error message). */
const BODY_SNIPPET = 512;

/** Send one request; resolves with the status (any), rejects on connection errors, the guard and the timeout. */
export function deliverWebhook(request: DeliveryRequest): Promise<{ status: number; body: string }> {
  const url = new URL(request.url);
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  if (!request.allowPrivateNetworks && isIP(host) !== 0 && isForbiddenAddress(host)) {
    return Promise.reject(new ForbiddenTargetError(host, host));
  }
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(url, {
      method: 'POST',
      headers: { ...request.headers, 'content-length': Buffer.byteLength(request.body) },
      ...(request.allowPrivateNetworks ? {} : { lookup: guardedLookup as unknown as typeof dnsLookup }),
      ...(request.signal ? { signal: request.signal } : {}),
      agent: false,
    });
    const timer = setTimeout(() => req.destroy(new Error(`webhook request timed out after ${request.timeoutMs} ms`)), request.timeoutMs);
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < BODY_SNIPPET) body += chunk.slice(0, BODY_SNIPPET - body.length);
      });
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, body });
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
