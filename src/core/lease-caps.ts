/**
 * Lease caps (docs/configuration.md "Flow control"): how many jobs may be
 * running at once per tenant, per remote worker id and per work key. Pure:
 * the store counts running jobs inside the lease itself (so local dispatch,
 * remote leases and every node of a cluster are held by the same count); this
 * file only says which cap applies to what.
 *
 * Why the store and not the runtime: a count kept in one process cannot see
 * another node's leases, and a count read before the lease races the next
 * lease call. Counting `running` rows in the lease's own write (SQLite) or
 * after an advisory lock (PostgreSQL) cannot drift.
 */

/** Per-tenant caps, as the store applies them to the candidates of one lease. */
export interface TenantCaps {
  /** Running jobs any one tenant may have over every queue; null: no cluster-wide cap (overrides still apply). */
  maxActiveLeases: number | null;
  /** Per tenant, its own cluster-wide cap in place of `maxActiveLeases`. */
  overrides: ReadonlyMap<string, number>;
  /** Per queue, the running jobs any one tenant may have in that queue (on top of the cluster-wide cap). */
  perQueue: ReadonlyMap<string, number>;
}

/** Worker caps: what one remote worker id, and one work key over all its worker ids, may hold running. */
export interface WorkerCaps {
  /** Per worker id; null: no cap. */
  maxActiveLeases: number | null;
  /** Per work key, over all its worker ids; null: no cap. */
  keyMaxActiveLeases: number | null;
  /** One key's own caps, by key id or name (`flow.workers.keys`): over all its worker ids, and per worker id. */
  keys: ReadonlyMap<string, { maxActiveLeases: number | null; maxWorkerLeases: number | null }>;
}

/** The resolved `flow` caps of a config. */
export interface FlowCaps {
  tenants: TenantCaps;
  workers: WorkerCaps;
}

export const NO_TENANT_CAPS: TenantCaps = { maxActiveLeases: null, overrides: new Map(), perQueue: new Map() };
export const NO_FLOW_CAPS: FlowCaps = { tenants: NO_TENANT_CAPS, workers: { maxActiveLeases: null, keyMaxActiveLeases: null, keys: new Map() } };

/** Caps one lease call carries to the store (`LeaseRequest.caps`). Absent fields: not capped. */
export interface LeaseCaps {
  tenants?: TenantCaps;
  /** Running jobs the request's worker id may hold in all, this call's included. */
  worker?: number;
  /** Running jobs the request's key (`keyId`) may hold over all its worker ids. */
  key?: number;
}

/** Which caps held jobs back in one lease call (filled by the store when asked: `LeaseRequest.capped`). */
export interface LeaseCapReport {
  /** Tenants whose jobs were passed over because the tenant was at a cap, by the job's queue (tenants go to a log line, never a metric label). */
  tenantByQueue: Map<string, Set<string>>;
  /** The worker id's cap cut the call short (fewer jobs than asked, maybe none). */
  worker: boolean;
  /** The key's cap cut the call short. */
  key: boolean;
  /**
   * Another node was leasing some of these jobs' tenants at the same moment
   * (PostgreSQL: its lock was held), so they were passed over for this call
   * without being at a cap. Not a refusal: the caller should look again
   * shortly, since nothing else will wake it when the other node commits.
   */
  contended: boolean;
}

export function emptyCapReport(): LeaseCapReport {
  return { tenantByQueue: new Map(), worker: false, key: false, contended: false };
}

export function capReportIsEmpty(report: LeaseCapReport): boolean {
  return report.tenantByQueue.size === 0 && !report.worker && !report.key;
}

/**
 * The tenant caps to hand the store, or undefined when none is configured:
 * the store then keeps its fast path. Any per-queue cap counts, whatever the
 * asked handlers' queues: a job may sit in a queue other than its handler's.
 *
 * @example
 * tenantCapsIfAny(config.flow.tenants); // undefined without flow.tenants and queues.<q>.tenantMaxActiveLeases
 */
export function tenantCapsIfAny(caps: TenantCaps): TenantCaps | undefined {
  return caps.maxActiveLeases !== null || caps.overrides.size > 0 || caps.perQueue.size > 0 ? caps : undefined;
}

/**
 * The worker and key caps of a remote lease by `key` (its id and name; null:
 * an unauthenticated lease): the key's own entry in `flow.workers.keys` (by
 * id, else by name), else the defaults.
 *
 * @example
 * workerCapsFor(workers, { id: 'key_ab12', name: 'batch' }); // { worker: 4, key: 16 }
 */
export function workerCapsFor(workers: WorkerCaps, key: { id: string; name: string } | null): Pick<LeaseCaps, 'worker' | 'key'> {
  const own = key === null ? undefined : (workers.keys.get(key.id) ?? workers.keys.get(key.name));
  const worker = own?.maxWorkerLeases ?? workers.maxActiveLeases;
  const total = key === null ? null : (own?.maxActiveLeases ?? workers.keyMaxActiveLeases);
  return { ...(worker === null ? {} : { worker }), ...(total === null ? {} : { key: total }) };
}

/** The cluster-wide cap of one tenant (null: none). */
export function tenantCap(caps: TenantCaps, tenant: string): number | null {
  return caps.overrides.get(tenant) ?? caps.maxActiveLeases;
}

/**
 * Running counts of tenants, kept through one lease call: seeded from the
 * store's count, raised by each job the call takes (`fits`, then `take`
 * once every other check has passed too).
 */
export class TenantTally {
  readonly #total = new Map<string, number>();
  readonly #inQueue = new Map<string, number>();

  constructor(private readonly caps: TenantCaps) {}

  /** Whether the store's count for the tenant was loaded (`load`) in this call. */
  has(tenant: string): boolean {
    return this.#total.has(tenant);
  }

  /** The store's count of the tenant's running jobs, in all and per queue. */
  load(tenant: string, byQueue: Iterable<readonly [queue: string, running: number]>): void {
    let total = 0;
    for (const [queue, n] of byQueue) {
      total += n;
      this.#inQueue.set(`${queue}\u0000${tenant}`, n);
    }
    this.#total.set(tenant, total);
  }

  /** Whether one more running job of `tenant` in `queue` stays within its caps (nothing is counted: `take` does). */
  fits(tenant: string, queue: string): boolean {
    const cap = tenantCap(this.caps, tenant);
    if (cap !== null && (this.#total.get(tenant) ?? 0) >= cap) return false;
    const queueCap = this.caps.perQueue.get(queue);
    return queueCap === undefined || (this.#inQueue.get(`${queue}\u0000${tenant}`) ?? 0) < queueCap;
  }

  /** Count one more running job of `tenant` in `queue` (the call took it). */
  take(tenant: string, queue: string): void {
    const slot = `${queue}\u0000${tenant}`;
    this.#total.set(tenant, (this.#total.get(tenant) ?? 0) + 1);
    this.#inQueue.set(slot, (this.#inQueue.get(slot) ?? 0) + 1);
  }

  /** At its cluster-wide cap: none of its jobs in any queue can be taken now. */
  full(tenant: string): boolean {
    const cap = tenantCap(this.caps, tenant);
    return cap !== null && (this.#total.get(tenant) ?? 0) >= cap;
  }
}

/** Note a tenant-capped candidate in the report. */
export function noteTenantRefusal(report: LeaseCapReport | undefined, tenant: string, queue: string): void {
  if (!report) return;
  let tenants = report.tenantByQueue.get(queue);
  if (!tenants) report.tenantByQueue.set(queue, (tenants = new Set()));
  tenants.add(tenant);
}

/**
 * How many more jobs a call may take under the worker and key caps, given
 * what each already holds running; notes in the report which cap cut it.
 */
export function roomUnderWorkerCaps(
  limit: number,
  caps: LeaseCaps,
  running: { worker: number; key: number },
  report: LeaseCapReport | undefined,
): number {
  let room = limit;
  if (caps.worker !== undefined) {
    const left = Math.max(0, caps.worker - running.worker);
    if (left < room) {
      room = left;
      if (report) report.worker = true;
    }
  }
  if (caps.key !== undefined) {
    const left = Math.max(0, caps.key - running.key);
    if (left < room) {
      room = left;
      if (report) report.key = true;
    }
  }
  return room;
}
