/**
 * TLS fixtures for tests: self-signed certificates made with the openssl CLI,
 * a "live" pair of files a node serves (replaced to simulate a renewal), and
 * a GET over a fresh TLS connection that reports the server certificate's CN.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';

export interface CertFiles {
  cert: string;
  key: string;
}

/** A self-signed certificate for 127.0.0.1 with CN `name`. */
export function selfSigned(dir: string, name: string): CertFiles {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', `/CN=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { cert, key };
}

/**
 * Two certificates (`first`, `second`) and the live files a node is configured
 * with, holding `first`; `renew()` copies `second` over them. `ca` trusts both.
 */
export function renewableCert(dir: string): { live: CertFiles; ca: Buffer; renew(): void; breakKey(): void } {
  const first = selfSigned(dir, 'first');
  const second = selfSigned(dir, 'second');
  const live = { cert: join(dir, 'live.crt'), key: join(dir, 'live.key') };
  copyFileSync(first.cert, live.cert);
  copyFileSync(first.key, live.key);
  return {
    live,
    ca: Buffer.concat([readFileSync(first.cert), readFileSync(second.cert)]),
    renew() {
      copyFileSync(second.cert, live.cert);
      copyFileSync(second.key, live.key);
    },
    /** A certificate where the key should be: a reload must fail and keep the current pair. */
    breakKey() {
      copyFileSync(first.cert, live.key);
    },
  };
}

/** GET over a fresh TLS connection trusting `ca`: the status, headers and the server certificate's CN. */
export function httpsGet(url: string, ca: Buffer | string, path = '/health/live'): Promise<{ status: number; headers: Record<string, unknown>; cn: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url + path, { ca, agent: false }, (res) => {
      const cn = String((res.socket as TLSSocket).getPeerCertificate().subject?.CN);
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, cn }));
    });
    req.on('error', reject);
    req.end();
  });
}
