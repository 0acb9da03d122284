/**
 * Readiness (OPERATIONS.md "Probes"): the node is ready when it is running
 * (not starting, not draining), its store answers a ping within a timeout, and
 * the store's schema is the one this binary knows. Each check is named in the
 * answer so a 503 says which one failed. Liveness checks nothing but the
 * event loop, on purpose: a database blip must not restart every replica.
 */
import type { MigrationStatus, StorageEngine } from '../store/engine.js';

export interface CheckResult {
  ok: boolean;
  detail?: string;
}

export interface ReadinessReport {
  ok: boolean;
  checks: Record<string, CheckResult>;
}

export interface ReadinessOptions {
  state: () => string;
  store: Pick<StorageEngine, 'ping'>;
  /**
   * The schema check: resolves when the store's schema is current, throws
   * (with a message saying what is wrong) when it is not. Default: the
   * migration status the node recorded at start.
   */
  schema?: () => Promise<void>;
  /** Store ping timeout. Default 2 s. */
  timeoutMs?: number;
  /**
   * When given and the store is known unreachable, the store check gives its
   * ping only a moment (`RECHECK_MS`) before failing with the known reason:
   * no probe waits out a dead path, and one that answers again ends the
   * outage at once (`answered()`).
   */
  storeHealth?: { readonly reachable: boolean; readonly reason: string | null; answered(): void };
}

const RECHECK_MS = 250;

/**
 * A schema check from the status `store.migrate()` returned at start.
 *
 * @example
 * const schema = schemaFromStatus(await store.migrate());
 */
export function schemaFromStatus(status: MigrationStatus): () => Promise<void> {
  return async () => {
    if (status.current !== status.latest) throw new Error(`schema is at version ${status.current}; this binary needs ${status.latest}`);
  };
}

/**
 * A schema check that asks the store (`migrate({ apply: false })`: read the
 * version, write nothing) at most every `everyMs`, for stores several nodes
 * share, where a newer node may migrate past this binary while it runs.
 * Between asks the last answer stands, so a probe every second costs one
 * query per interval.
 *
 * @example
 * const schema = schemaRecheck(store, 30_000);
 */
export function schemaRecheck(store: Pick<StorageEngine, 'migrate'>, everyMs: number, clock: () => number = Date.now): () => Promise<void> {
  let last: { at: number; answer: Promise<void> } | null = null;
  return () => {
    const now = clock();
    if (!last || now - last.at >= everyMs) {
      const answer = store.migrate({ apply: false }).then(() => undefined);
      answer.catch(() => undefined); // the caller sees the rejection; a cached one must not go unhandled
      last = { at: now, answer };
    }
    return last.answer;
  };
}

export class Readiness {
  readonly #options: ReadinessOptions;

  constructor(options: ReadinessOptions) {
    this.#options = options;
  }

  async check(): Promise<ReadinessReport> {
    const state = this.#options.state();
    const timeoutMs = this.#options.timeoutMs ?? 2_000;
    const [store, migrations] = await Promise.all([
      this.#storeCheck(timeoutMs),
      this.#options.schema ? within(this.#options.schema, timeoutMs, 'schema check') : Promise.resolve<CheckResult>({ ok: true }),
    ]);
    const checks: Record<string, CheckResult> = {
      lifecycle: state === 'running' ? { ok: true } : { ok: false, detail: `node is ${state}` },
      store,
      migrations,
    };
    return { ok: Object.values(checks).every((c) => c.ok), checks };
  }

  async #storeCheck(timeoutMs: number): Promise<CheckResult> {
    const health = this.#options.storeHealth;
    if (!health || health.reachable) return within(() => this.#options.store.ping(), timeoutMs, 'store');
    const recheck = await within(() => this.#options.store.ping(), Math.min(timeoutMs, RECHECK_MS), 'store');
    if (recheck.ok) health.answered();
    return recheck.ok ? recheck : { ok: false, detail: health.reason ?? recheck.detail ?? 'store unreachable' };
  }
}

async function within(run: () => Promise<void>, ms: number, what: string): Promise<CheckResult> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      run(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
      }),
    ]);
    return { ok: true };
  } catch (error) {
    return { ok: false, detail: error instanceof Error ? error.message : String(error) };
  } finally {
    clearTimeout(timer);
  }
}
