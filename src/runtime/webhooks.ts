/**
 * The built-in webhook action: runtime triggers (`POST /v1/triggers`) whose
 * matching events fan out to the built-in handler `drover.webhook`, one job
 * per trigger and event. The job holds only the trigger id; the URL, secret
 * and headers are read from the trigger when the job runs (a deleted
 * trigger's waiting deliveries fail as non-retryable), so secrets never sit
 * in job rows.
 *
 * Triggers are stored as one JSON document in the store's metadata
 * (`webhook_triggers`), changed by atomic read-modify-writes; with a shared
 * store each node re-reads it every `refreshMs`. Each target host
 * (`host:port`) has a circuit breaker (`webhooks.breaker`, state in
 * `webhook_breaker:<host>`, merged across nodes like handler breakers):
 * while it is open a delivery is handed back unspent until the cool-down
 * ends, then one probe goes out.
 */
import { randomUUID } from 'node:crypto';
import { breakerAdmission, breakerAt, breakerResult, breakerRetryAt, breakerStarted, closedBreaker, mergeBreaker, type BreakerState, type BreakerStateName } from '../core/breaker.js';
import { resolveConfig, type ResolvedConfig, type ResolvedHandler } from '../core/config.js';
import { DroverError, NonRetryableError, toError } from '../core/errors.js';
import { compileFilter } from '../core/filter.js';
import { actionCredentials, redactValues, redactWebhookAction } from '../core/redact.js';
import type { JobContext } from '../core/handler.js';
import { compilePattern } from '../core/trigger.js';
import type { LeasedJob } from '../core/types.js';
import type { StorageEngine } from '../store/engine.js';
import { assertAllowedTarget, deliverWebhook, ForbiddenTargetError, signWebhook } from './webhook-delivery.js';
import { makeSecret, storedSecrets, withoutSecret, withSecret, type WebhookSecret } from './webhook-secrets.js';

export const WEBHOOK_HANDLER = 'drover.webhook';
const TRIGGERS_KEY = 'webhook_triggers';
const breakerKey = (host: string) => `webhook_breaker:${host}`;

export interface WebhookAction {
  type: 'webhook';
  url: string;
  /** Every active secret signs each delivery: one, or two during a rotation. */
  secrets: WebhookSecret[];
  timeoutMs: number | null;
  headers: Record<string, string>;
}

export interface StoredTrigger {
  id: string;
  on: string;
  filter: unknown;
  action: WebhookAction;
  createdAt: number;
}

export interface TriggerInput {
  on: string;
  filter?: unknown;
  action: { type: 'webhook'; url: string; secret?: string; timeoutMs?: number; headers?: Record<string, string> };
}

/** Headers Drover sets itself; a trigger may not override them. */
const RESERVED_HEADERS = new Set(['content-type', 'content-length', 'host', 'user-agent', 'x-drover-signature', 'x-drover-timestamp', 'x-drover-event', 'x-drover-delivery', 'transfer-encoding', 'connection']);

interface Compiled {
  trigger: StoredTrigger;
  matches: (name: string) => boolean;
  filter: ((data: unknown) => boolean) | null;
  host: string;
}

/**
 * The wire shape of a trigger, for API answers and audit records alike: no
 * secret, header values, query values or userinfo (core/redact.ts).
 */
export function triggerJson(trigger: StoredTrigger): Record<string, unknown> {
  return { id: trigger.id, on: trigger.on, filter: trigger.filter, action: redactWebhookAction(trigger.action), createdAt: new Date(trigger.createdAt).toISOString() };
}

/** A rotate or retire: the trigger before and after, and the secret added or retired. */
export interface SecretChange {
  before: StoredTrigger;
  after: StoredTrigger;
  secret: WebhookSecret;
}

export interface WebhookOptions {
  store: StorageEngine;
  config: ResolvedConfig;
  clock: () => number;
  onError: (task: string, error: Error) => void;
  refreshMs?: number;
  /** Added to the handler's timeout: a probe older than that was lost with its node. */
  leaseMarginMs?: number;
}

export class Webhooks {
  #compiled: Compiled[] = [];
  readonly #breakers = new Map<string, BreakerState>();
  readonly #writes = new Map<string, Promise<void>>();
  #refresh: NodeJS.Timeout | null = null;
  /** The built-in handler; added to the runtime's handlers. */
  readonly handler: ResolvedHandler;

  constructor(private readonly options: WebhookOptions) {
    this.handler = this.#resolveHandler();
  }

  async start(): Promise<void> {
    await this.load();
    if (this.options.store.capabilities.multiNode) {
      this.#refresh = setInterval(() => {
        this.load().catch((error: unknown) => this.options.onError('webhook-refresh', toError(error)));
      }, this.options.refreshMs ?? 5_000);
      this.#refresh.unref();
    }
  }

  async stop(): Promise<void> {
    if (this.#refresh) clearInterval(this.#refresh);
    this.#refresh = null;
    await Promise.all(this.#writes.values());
  }

  /** Read the stored triggers and the breakers of their hosts. */
  async load(): Promise<void> {
    this.#compiled = compileAll(await this.#read());
    for (const host of new Set(this.#compiled.map((c) => c.host))) {
      const stored = parseBreaker(await this.options.store.getMeta(breakerKey(host)));
      // Merged, not replaced: another node's opening (or closing) counts, and so does this node's.
      if (stored) this.#breakers.set(host, mergeBreaker(this.#breakers.get(host) ?? closedBreaker(), stored));
    }
  }

  list(): StoredTrigger[] {
    return this.#compiled.map((c) => c.trigger);
  }

  /** Validate and store a trigger; the secret is generated when not given (and returned only here). */
  async create(input: TriggerInput): Promise<StoredTrigger> {
    const { webhooks } = this.options.config;
    const action = input.action;
    let url: URL;
    try {
      url = new URL(action.url);
    } catch {
      throw new DroverError('validation', `action.url: not a URL: ${JSON.stringify(action.url)}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new DroverError('validation', 'action.url: expected an http or https URL');
    if (url.username || url.password) throw new DroverError('validation', 'action.url: credentials in the URL are not allowed; use action.headers');
    if (action.timeoutMs !== undefined && action.timeoutMs > webhooks.timeoutMs) {
      throw new DroverError('validation', `action.timeoutMs: at most webhooks.timeoutMs (${webhooks.timeoutMs})`);
    }
    for (const name of Object.keys(action.headers ?? {})) {
      if (RESERVED_HEADERS.has(name.toLowerCase())) throw new DroverError('validation', `action.headers: ${name} is set by Drover`);
    }
    if (!webhooks.allowPrivateNetworks) await assertAllowedTarget(url);
    const now = this.options.clock();
    const trigger: StoredTrigger = {
      id: `trg_${randomUUID()}`,
      on: input.on,
      filter: input.filter ?? null,
      action: {
        type: 'webhook',
        url: url.toString(),
        secrets: [makeSecret(action.secret, now)],
        timeoutMs: action.timeoutMs ?? null,
        headers: { ...action.headers },
      },
      createdAt: now,
    };
    try {
      compile(trigger);
    } catch (error) {
      throw error instanceof DroverError ? error : new DroverError('validation', toError(error).message);
    }
    await this.#update((current) => [...current, trigger]);
    return trigger;
  }

  /** Remove a trigger; null when there was none with this id. */
  async delete(id: string): Promise<StoredTrigger | null> {
    let found: StoredTrigger | null = null;
    await this.#update((current) => {
      found = current.find((t) => t.id === id) ?? null;
      return found ? current.filter((t) => t.id !== id) : null;
    });
    return found;
  }

  /**
   * Add a signing secret (`value`, or a generated one): from now on every
   * delivery carries a signature with each active secret. Null when there is
   * no such trigger; 409 when it already has two.
   */
  async rotateSecret(id: string, value: string | undefined): Promise<SecretChange | null> {
    const added = makeSecret(value, this.options.clock());
    const changed = await this.#changeSecrets(id, (t) => withSecret(t.id, t.action.secrets, added));
    return changed && { ...changed, secret: added };
  }

  /** Stop signing with a secret (default: the oldest). Null when there is no such trigger; 409 for its last secret. */
  async retireSecret(id: string, secretId: string | undefined): Promise<SecretChange | null> {
    let retired: WebhookSecret | null = null;
    const changed = await this.#changeSecrets(id, (t) => {
      const out = withoutSecret(t.id, t.action.secrets, secretId);
      retired = out.retired;
      return out.kept;
    });
    return changed && retired ? { ...changed, secret: retired } : null;
  }

  async #changeSecrets(id: string, change: (t: StoredTrigger) => WebhookSecret[]): Promise<{ before: StoredTrigger; after: StoredTrigger } | null> {
    let seen: { before: StoredTrigger; after: StoredTrigger } | null = null as { before: StoredTrigger; after: StoredTrigger } | null;
    // The checks run inside the atomic update, on the stored list: two rotations at once cannot both pass.
    await this.#update((current) => {
      const index = current.findIndex((t) => t.id === id);
      if (index < 0) return null;
      const before = current[index]!;
      const after = { ...before, action: { ...before.action, secrets: change(before) } };
      seen = { before, after };
      return current.map((t, i) => (i === index ? after : t));
    });
    return seen;
  }

  /** The fan-out of an event: one job payload per matching trigger. */
  route(event: { name: string; data: unknown }): Array<{ handler: ResolvedHandler; payload: unknown }> {
    const out: Array<{ handler: ResolvedHandler; payload: unknown }> = [];
    for (const c of this.#compiled) {
      if (c.matches(event.name) && (c.filter === null || c.filter(event.data))) out.push({ handler: this.handler, payload: { trigger: c.trigger.id } });
    }
    return out;
  }

  /** Dispatcher gate for `drover.webhook` jobs: null runs it, a time holds it (its host's breaker is open). */
  admit(job: LeasedJob): number | null {
    const host = this.#hostOf(job);
    if (host === null) return null;
    const policy = this.options.config.webhooks.breaker;
    const now = this.options.clock();
    const state = this.#breakers.get(host) ?? closedBreaker();
    const admission = breakerAdmission(state, policy, now, this.handler.timeoutMs + (this.options.leaseMarginMs ?? 30_000));
    if (admission === 'all') return null;
    if (admission === 'probe') {
      this.#setBreaker(host, breakerStarted(state, policy, now));
      return null;
    }
    // Open: wait for the cool-down; half-open with a probe out: look again shortly.
    return Math.max(breakerRetryAt(state, policy) ?? 0, now + 1_000);
  }

  /** Per target host: breaker state, for `GET /v1/triggers`. */
  breakerView(): Record<string, { state: BreakerStateName; consecutiveFailures: number; openedAt: string | null; probeAt: string | null }> {
    const policy = this.options.config.webhooks.breaker;
    const now = this.options.clock();
    const out: Record<string, { state: BreakerStateName; consecutiveFailures: number; openedAt: string | null; probeAt: string | null }> = {};
    for (const [host, s] of this.#breakers) {
      const at = breakerAt(s, policy, now);
      const probeAt = breakerRetryAt(at, policy);
      out[host] = { state: at.state, consecutiveFailures: at.consecutiveFailures, openedAt: at.openedAt === null ? null : new Date(at.openedAt).toISOString(), probeAt: probeAt === null ? null : new Date(probeAt).toISOString() };
    }
    return out;
  }

  #hostOf(job: LeasedJob): string | null {
    const id = (job.payload as { trigger?: unknown } | null)?.trigger;
    const c = this.#compiled.find((x) => x.trigger.id === id);
    return c ? c.host : null;
  }

  #result(host: string, ok: boolean): void {
    const policy = this.options.config.webhooks.breaker;
    this.#setBreaker(host, breakerResult(this.#breakers.get(host) ?? closedBreaker(), policy, this.options.clock(), ok));
  }

  #setBreaker(host: string, next: BreakerState): void {
    const before = this.#breakers.get(host) ?? closedBreaker();
    if (JSON.stringify(before) === JSON.stringify(next)) return;
    this.#breakers.set(host, next);
    const previous = this.#writes.get(host) ?? Promise.resolve();
    // Merged into the stored state atomically, so nodes sharing the store agree on the host (supervision.ts does the same).
    const write = previous
      .then(() =>
        this.options.store.updateMeta(breakerKey(host), (raw) => {
          const stored = parseBreaker(raw);
          const local = this.#breakers.get(host) ?? closedBreaker();
          const merged = stored ? mergeBreaker(local, stored) : local;
          this.#breakers.set(host, merged);
          return JSON.stringify(merged);
        }),
      )
      .then(() => undefined)
      .catch((error: unknown) => this.options.onError('webhook-breaker-write', toError(error)));
    this.#writes.set(host, write);
  }

  async #read(): Promise<StoredTrigger[]> {
    return parseTriggers(await this.options.store.getMeta(TRIGGERS_KEY));
  }

  /**
   * Change the stored list in one atomic read-modify-write (`change` returns
   * null to leave it): concurrent requests, on this node or others, each see
   * the other's change instead of overwriting it.
   */
  async #update(change: (current: StoredTrigger[]) => StoredTrigger[] | null): Promise<void> {
    const stored = await this.options.store.updateMeta(TRIGGERS_KEY, (raw) => {
      const next = change(parseTriggers(raw));
      return next ? JSON.stringify(next) : null;
    });
    this.#compiled = compileAll(parseTriggers(stored));
  }

  /** `drover.webhook`: the policy comes from `webhooks.*`; handler-wide quarantine and breaker are off (the breaker is per host). */
  #resolveHandler(): ResolvedHandler {
    const { webhooks } = this.options.config;
    const base = resolveConfig({
      handlers: [{ name: WEBHOOK_HANDLER, retry: { maxAttempts: webhooks.maxAttempts }, timeoutMs: webhooks.timeoutMs + 5_000, run: () => null }],
    }, {}).handlers.get(WEBHOOK_HANDLER)!;
    return {
      ...base,
      quarantine: { ...base.quarantine, failures: Number.MAX_SAFE_INTEGER },
      breaker: { ...base.breaker, failures: Number.MAX_SAFE_INTEGER, ratio: 2 },
      run: (ctx: JobContext) => this.#deliver(ctx),
    };
  }

  async #deliver(ctx: JobContext): Promise<unknown> {
    const { webhooks } = this.options.config;
    const id = (ctx.job.payload as { trigger?: unknown } | null)?.trigger;
    const c = this.#compiled.find((x) => x.trigger.id === id);
    if (!c) throw new NonRetryableError(`trigger ${String(id)} no longer exists`);
    const event = ctx.event;
    if (!event) throw new NonRetryableError('the job has no event to deliver');
    const { action } = c.trigger;
    const body = JSON.stringify({
      id: event.id,
      name: event.name,
      data: event.data,
      tenant: event.tenant,
      receivedAt: new Date(event.receivedAt).toISOString(),
      trigger: c.trigger.id,
    });
    const timestamp = Math.floor(this.options.clock() / 1000);
    const headers: Record<string, string> = {
      ...action.headers,
      'content-type': 'application/json',
      'user-agent': 'drover-webhook',
      'x-drover-event': event.name,
      'x-drover-delivery': ctx.job.id,
      'x-drover-timestamp': String(timestamp),
      'x-drover-signature': signWebhook(action.secrets.map((s) => s.secret), ctx.job.id, timestamp, body),
    };
    let response: { status: number; body: string };
    try {
      response = await deliverWebhook({
        url: action.url,
        body,
        headers,
        timeoutMs: action.timeoutMs ?? webhooks.timeoutMs,
        allowPrivateNetworks: webhooks.allowPrivateNetworks,
        signal: ctx.signal,
      });
    } catch (caught) {
      const error = toError(caught);
      if (error instanceof ForbiddenTargetError || error.name === 'ForbiddenTargetError') throw new NonRetryableError(error.message);
      if (!ctx.signal.aborted) this.#result(c.host, false);
      throw new Error(`webhook delivery to ${c.host} failed: ${error.message}`);
    }
    const { status } = response;
    // A receiver that echoes the request would put its credentials into the job's error, which `read` keys see.
    const detail = `${status}${response.body ? `: ${redactValues(response.body, actionCredentials(action)).slice(0, 200)}` : ''}`;
    if (status >= 200 && status < 300) {
      this.#result(c.host, true);
      return { status };
    }
    if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
      // The host answered: it is up, the request is what it refuses.
      this.#result(c.host, true);
      throw new NonRetryableError(`webhook ${c.host} answered HTTP ${detail}`);
    }
    this.#result(c.host, false);
    throw new Error(`webhook ${c.host} answered HTTP ${detail}`);
  }
}

function compile(trigger: StoredTrigger): Compiled {
  if (trigger.action.secrets.length === 0) throw new Error(`trigger ${trigger.id} has no signing secret`);
  const matches = compilePattern(trigger.on);
  const filter = trigger.filter === null || trigger.filter === undefined ? null : compileFilter(trigger.filter);
  return { trigger, matches, filter, host: new URL(trigger.action.url).host };
}

function parseTriggers(raw: string | null): StoredTrigger[] {
  if (raw === null) return [];
  try {
    const parsed = JSON.parse(raw) as unknown;
    if (!Array.isArray(parsed)) return [];
    return (parsed as Array<StoredTrigger | null>)
      .filter((t): t is StoredTrigger => typeof t === 'object' && t !== null && typeof t.action === 'object' && t.action !== null)
      .map((t) => {
        // The single `secret` of older rows becomes the first of `secrets`; it is not written back, so a retired secret is gone.
        const { secret: _legacy, ...action } = t.action as WebhookAction & { secret?: unknown };
        return { ...t, action: { ...action, secrets: storedSecrets(t.action, t.createdAt) } };
      });
  } catch {
    return [];
  }
}

function compileAll(triggers: readonly StoredTrigger[]) {
  return triggers.flatMap((t) => {
    try {
      return [compile(t)];
    } catch {
      return []; // A trigger that no longer compiles (hand-edited row) routes nothing.
    }
  });
}

/** A stored breaker, or null (none, or corrupt: a closed breaker, which the next result rewrites). */
function parseBreaker(raw: string | null): BreakerState | null {
  if (raw === null) return null;
  try {
    const parsed = JSON.parse(raw) as BreakerState;
    return parsed && typeof parsed.state === 'string' ? parsed : null;
  } catch {
    return null;
  }
}
