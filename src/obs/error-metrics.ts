/**
 * `drover_errors_total{kind,layer}`: faults that are neither an HTTP status
 * nor a job outcome, so no other metric shows them. `layer` says where
 * (`store`: a storage call failed for the store's sake; `telemetry`: an
 * OpenTelemetry export failed), `kind` what (a bounded set per layer).
 *
 * A store call refused for the caller's sake (unknown job, stale lease, full
 * queue) is not a fault and is not counted: those are answered with a 4xx
 * or a job outcome and counted there.
 */
import { DroverError } from '../core/errors.js';
import type { DroverMetrics } from './metrics.js';
import type { CounterFamily } from './series.js';

/**
 * Store fault kinds: `full` (out of disk space), `locked` (another connection
 * holds the write lock: SQLITE_BUSY/LOCKED), `unavailable` (connection lost,
 * refused, or the store unreachable), `timeout` (a statement or a pool checkout
 * missed its deadline), `conflict` (serialization failure or deadlock that
 * survived the retries), `io` (disk I/O error), `corrupt` (the file is damaged),
 * `other` (anything else that is not the caller's mistake).
 */
export const STORE_ERROR_KINDS = ['full', 'locked', 'unavailable', 'timeout', 'conflict', 'io', 'corrupt', 'other'] as const;
export type StoreErrorKind = (typeof STORE_ERROR_KINDS)[number];
/** Telemetry export kinds: `unreachable` (connection refused, DNS, timeout), `rejected` (the collector answered an error), `dropped` (a full buffer discarded data). */
export const TELEMETRY_ERROR_KINDS = ['unreachable', 'rejected', 'dropped'] as const;
export type TelemetryErrorKind = (typeof TELEMETRY_ERROR_KINDS)[number];

/** Coded errors that are store faults; every other code answers the caller (a 4xx, a job outcome). */
const FAULT_CODES = new Set<string>(['store_full', 'store_unavailable', 'schema_too_new', 'internal']);

/** PostgreSQL SQLSTATE classes and codes (https://www.postgresql.org/docs/current/errcodes-appendix.html). */
function postgresKind(code: string): StoreErrorKind | null {
  if (code === '40001' || code === '40P01') return 'conflict';
  if (code === '57014' || code === '55P03') return 'timeout'; // statement or lock timeout
  if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300') return 'unavailable';
  if (code === '53100') return 'full'; // disk full on the server
  if (code.startsWith('58')) return 'io';
  if (code === 'XX001' || code === 'XX002') return 'corrupt';
  return null;
}

function sqliteKind(code: string): StoreErrorKind | null {
  if (code.startsWith('SQLITE_FULL')) return 'full';
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return 'locked';
  if (code.startsWith('SQLITE_IOERR')) return 'io';
  if (code.startsWith('SQLITE_CORRUPT') || code.startsWith('SQLITE_NOTADB')) return 'corrupt';
  if (code.startsWith('SQLITE_CANTOPEN')) return 'unavailable';
  return null;
}

/**
 * The kind of a failed store call, or null when the failure is the caller's
 * (not a fault). Looks at the error and its causes.
 *
 * @example
 * storeErrorKind(new DroverError('store_full', '…')); // 'full'
 * storeErrorKind(new DroverError('not_found', '…'));  // null
 */
export function storeErrorKind(error: unknown): StoreErrorKind | null {
  let coded: string | null = null;
  for (let e = error, depth = 0; e && typeof e === 'object' && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof DroverError) {
      if (depth === 0 && !FAULT_CODES.has(e.code)) return null;
      coded ??= e.code;
      continue;
    }
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') {
      const kind = code.startsWith('SQLITE_') ? sqliteKind(code) : /^[0-9A-Z]{5}$/.test(code) ? postgresKind(code) : /^E(CONNREFUSED|CONNRESET|PIPE|HOSTUNREACH|NOTFOUND|TIMEDOUT)$/.test(code) ? 'unavailable' : null;
      if (kind) return kind;
    }
    const message = (e as { message?: unknown }).message;
    if (typeof message === 'string' && /timeout exceeded when trying to connect|Query read timeout|timed out/i.test(message)) return 'timeout';
  }
  if (coded === 'store_full') return 'full';
  if (coded === 'store_unavailable') return 'unavailable';
  return 'other';
}

/**
 * @example
 * const errors = new ErrorMetrics(metrics);
 * const store = instrumentStore(engine, { timer, onError: (op, error) => errors.store(error) });
 * errors.telemetry('unreachable');
 */
export class ErrorMetrics {
  readonly family: CounterFamily<'kind' | 'layer'>;

  constructor(metrics: DroverMetrics) {
    this.family = metrics.counter('drover_errors_total', 'Faults that are not HTTP statuses or job outcomes, by layer (store, telemetry) and kind (store: full, locked, unavailable, timeout, conflict, io, corrupt, other; telemetry: unreachable, rejected, dropped).', ['kind', 'layer']);
    for (const kind of STORE_ERROR_KINDS) this.family.series(kind, 'store');
    for (const kind of TELEMETRY_ERROR_KINDS) this.family.series(kind, 'telemetry');
  }

  /** Count a failed store call, unless it was the caller's mistake. */
  store(error: unknown): void {
    const kind = storeErrorKind(error);
    if (kind) this.family.series(kind, 'store').inc();
  }

  telemetry(kind: TelemetryErrorKind, by = 1): void {
    this.family.series(kind, 'telemetry').inc(by);
  }
}
