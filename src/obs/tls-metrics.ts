/**
 * `drover_tls_certificate_expiry_timestamp_seconds`: when the certificate the
 * built-in TLS listener serves expires, read from `server.tls.certFile` on
 * scrape (parsed again only when the file changes, as a renewal does). Only
 * registered when built-in TLS is on; behind a TLS proxy, the proxy's own
 * exporter (or the blackbox exporter's `probe_ssl_earliest_cert_expiry`) covers it.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { Gauge } from 'prom-client';
import { toError } from '../core/errors.js';
import type { DroverMetrics } from './metrics.js';

/** The expiry (ms since the epoch) of the first certificate in a PEM file (the leaf). */
export function certificateExpiry(certFile: string): number {
  return Date.parse(new X509Certificate(readFileSync(certFile)).validTo);
}

/**
 * @example
 * if (config.server.tls) observeTlsCertificate(metrics, config.server.tls.certFile, (err) => logger.warn({ err }, 'cannot read the TLS certificate'));
 */
export function observeTlsCertificate(metrics: DroverMetrics, certFile: string, onError: (error: Error) => void): void {
  let cached: { mtimeMs: number; expiry: number } | null = null;
  new Gauge({
    name: 'drover_tls_certificate_expiry_timestamp_seconds',
    help: 'Unix time when the certificate the built-in TLS listener serves (server.tls.certFile) expires.',
    labelNames: ['certificate'],
    registers: [metrics.registry],
    collect() {
      try {
        const { mtimeMs } = statSync(certFile);
        if (!cached || cached.mtimeMs !== mtimeMs) cached = { mtimeMs, expiry: certificateExpiry(certFile) };
        this.set({ certificate: 'server' }, cached.expiry / 1000);
      } catch (error) {
        // Keep the last value: a renewal replacing the file must not blank the series.
        onError(toError(error));
      }
    },
  });
}
