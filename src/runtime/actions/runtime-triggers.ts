/**
 * Runtime triggers (`POST /v1/triggers`): matching events fan out to the
 * built-in handler of the trigger's action kind (`drover.webhook`,
 * `drover.http`, `drover.telegram`, `drover.mcp`), one job per trigger and
 * event. The job holds only the trigger id; the action (URL, secrets,
 * templates) is read from the trigger when the job runs (a deleted
 * trigger's waiting deliveries fail as non-retryable), so credentials never
 * sit in job rows.
 *
 * Triggers are stored as one JSON document in the store's metadata
 * (`webhook_triggers`, its name from when webhooks were the only action),
 * changed by atomic read-modify-writes; with a shared store each node
 * re-reads it every `refreshMs`. Each target has a breaker and a hold
 * (target-state.ts) shared across nodes. What differs per kind is behind
 * `ActionKind` (action.ts).
 */
import { randomUUID } from 'node:crypto';
import { resolveConfig, type ResolvedConfig, type ResolvedHandler } from '../../core/config.js';
import { DroverError, NonRetryableError, toError } from '../../core/errors.js';
import { compileFilter } from '../../core/filter.js';
import type { JobContext } from '../../core/handler.js';
import { redactValues } from '../../core/redact.js';
import { compilePattern } from '../../core/trigger.js';
import { checkTriggerControl, type TriggerControl } from '../../core/trigger-control.js';
import type { LeasedJob } from '../../core/types.js';
import type { MetaStore, StorageEngine } from '../../store/engine.js';
import { ActionFailure, type ActionKind, type StoredActionBase } from './action.js';
import { httpAction, type HttpAction } from './http.js';
import { mcpAction, type McpAction } from './mcp.js';
import { makeSecret, storedSecrets, withoutSecret, withSecret, type WebhookSecret } from './signing-secrets.js';
import { TargetStates, type TargetView } from './target-state.js';
import { telegramAction, type TelegramAction } from './telegram.js';
import { webhookAction, type WebhookAction } from './webhook.js';

export type StoredAction = WebhookAction | HttpAction | TelegramAction | McpAction;
export type ActionType = StoredAction['type'];

/** Every built-in action kind, by its `type`. */
export const ACTION_KINDS: { readonly [T in ActionType]: ActionKind<Extract<StoredAction, { type: T }>> } = {
  webhook: webhookAction,
  http: httpAction,
  telegram: telegramAction,
  mcp: mcpAction,
};
const kindOf = (type: string): ActionKind | undefined => (ACTION_KINDS as Record<string, ActionKind | undefined>)[type];

export interface StoredTrigger {
  id: string;
  on: string;
  filter: unknown;
  action: StoredAction;
  createdAt: number;
  /** Debounce or throttle (core/trigger-control.ts); absent: one delivery per event. */
  control?: TriggerControl | null;
}

export interface TriggerInput {
  on: string;
  filter?: unknown;
  action: { type: ActionType } & Record<string, unknown>;
  debounce?: unknown;
  throttle?: unknown;
  /** Refused: an action delivers one event (see `create`). */
  batch?: unknown;
}

/** A matching trigger's job for an event; `control` with the group's name when the trigger debounces or throttles. */
export interface TriggerRoute {
  handler: ResolvedHandler;
  payload: unknown;
  control?: { control: TriggerControl; group: string };
}

interface Compiled {
  trigger: StoredTrigger;
  kind: ActionKind;
  matches: (name: string) => boolean;
  filter: ((data: unknown) => boolean) | null;
  target: string;
}

/**
 * The wire shape of a trigger, for API answers and audit records alike: each
 * kind's view, with no credential in it (core/redact.ts, secret-ref.ts).
 */
export function triggerJson(trigger: StoredTrigger): Record<string, unknown> {
  const kind = kindOf(trigger.action.type)!;
  const control = trigger.control ? { [trigger.control.kind]: controlView(trigger.control) } : {};
  return { id: trigger.id, on: trigger.on, filter: trigger.filter, ...control, action: kind.view(trigger.action), createdAt: new Date(trigger.createdAt).toISOString() };
}

/** A control as it was given (without its `kind`, and without a key or bound that was not set). */
function controlView(control: TriggerControl): Record<string, unknown> {
  const { kind: _kind, ...rest } = control;
  return Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== null));
}

/** A rotate or retire: the trigger before and after, and the secret added or retired. */
export interface SecretChange {
  before: StoredTrigger;
  after: StoredTrigger;
  secret: WebhookSecret;
}

export interface RuntimeTriggerOptions {
  store: Pick<StorageEngine, 'capabilities'> & Pick<MetaStore, 'getMeta' | 'updateMeta'>;
  config: ResolvedConfig;
  clock: () => number;
  onError: (task: string, error: Error) => void;
  refreshMs?: number;
  /** Added to the handler's timeout: a probe older than that was lost with its node. */
  leaseMarginMs?: number;
}

const TRIGGERS_KEY = 'webhook_triggers';

export class RuntimeTriggers {
  #compiled: Compiled[] = [];
  #refresh: NodeJS.Timeout | null = null;
  readonly #targets: TargetStates;
  /** The built-in handlers, one per action kind; added to the runtime's handlers. */
  readonly handlers: ReadonlyMap<string, ResolvedHandler>;

  constructor(private readonly options: RuntimeTriggerOptions) {
    this.handlers = new Map(Object.values(ACTION_KINDS).map((kind: ActionKind) => [kind.handler, this.#resolveHandler(kind)] as const));
    const anyHandler = this.handlers.values().next().value!;
    this.#targets = new TargetStates({
      store: options.store,
      policy: options.config.webhooks.breaker,
      clock: options.clock,
      probeStaleMs: anyHandler.timeoutMs + (options.leaseMarginMs ?? 30_000),
      onError: options.onError,
    });
  }

  /** Whether `handler` is one of the action handlers (the very object, not a user's handler of that name). */
  owns(handler: ResolvedHandler): boolean {
    return this.handlers.get(handler.name) === handler;
  }

  async start(): Promise<void> {
    await this.load();
    if (this.options.store.capabilities.multiNode) {
      this.#refresh = setInterval(() => {
        this.load().catch((error: unknown) => this.options.onError('trigger-refresh', toError(error)));
      }, this.options.refreshMs ?? 5_000);
      this.#refresh.unref();
    }
  }

  async stop(): Promise<void> {
    if (this.#refresh) clearInterval(this.#refresh);
    this.#refresh = null;
    await this.#targets.stop();
  }

  /** Read the stored triggers and the state of their targets. */
  async load(): Promise<void> {
    this.#compiled = this.#compileAll(parseTriggers(await this.options.store.getMeta(TRIGGERS_KEY)));
    await this.#targets.load(this.#compiled.map((c) => c.target));
  }

  list(): StoredTrigger[] {
    return this.#compiled.map((c) => c.trigger);
  }

  /** Validate and store a trigger (a webhook's secret is generated when not given, and returned only here). */
  async create(input: TriggerInput): Promise<StoredTrigger> {
    const kind = kindOf(input.action.type);
    if (!kind) throw new DroverError('validation', `action.type: expected one of ${Object.keys(ACTION_KINDS).join(', ')}`);
    const control = runtimeTriggerControl(input);
    const action = (await kind.create(input.action, { clock: this.options.clock, config: this.options.config })) as StoredAction;
    const trigger: StoredTrigger = { id: `trg_${randomUUID()}`, on: input.on, filter: input.filter ?? null, action, createdAt: this.options.clock(), ...(control ? { control } : {}) };
    try {
      this.#compile(trigger);
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
   * Add a signing secret to a webhook trigger (`value`, or a generated one):
   * from now on every delivery carries a signature with each active secret.
   * Null when there is no such trigger; 409 when it already has two.
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

  async #changeSecrets(id: string, change: (t: StoredTrigger & { action: WebhookAction }) => WebhookSecret[]): Promise<{ before: StoredTrigger; after: StoredTrigger } | null> {
    let seen = null as { before: StoredTrigger; after: StoredTrigger } | null;
    // The checks run inside the atomic update, on the stored list: two rotations at once cannot both pass.
    await this.#update((current) => {
      const index = current.findIndex((t) => t.id === id);
      if (index < 0) return null;
      const before = current[index]!;
      if (before.action.type !== 'webhook') {
        throw new DroverError('invalid_state', `trigger ${id} has a ${before.action.type} action; only webhook actions have signing secrets (a credential in a secret reference is rotated by recreating the trigger, or by changing its environment variable)`);
      }
      const after = { ...before, action: { ...before.action, secrets: change(before as StoredTrigger & { action: WebhookAction }) } };
      seen = { before, after };
      return current.map((t, i) => (i === index ? after : t));
    });
    return seen;
  }

  /** The fan-out of an event: one job payload per matching trigger; the group is the trigger's id. */
  route(event: { name: string; data: unknown }): TriggerRoute[] {
    const out: TriggerRoute[] = [];
    for (const c of this.#compiled) {
      if (!c.matches(event.name) || (c.filter !== null && !c.filter(event.data))) continue;
      const control = c.trigger.control ? { control: { control: c.trigger.control, group: c.trigger.id } } : {};
      out.push({ handler: this.handlers.get(c.kind.handler)!, payload: { trigger: c.trigger.id }, ...control });
    }
    return out;
  }

  /** Dispatcher gate for action jobs: null runs it, a time holds it (its target's breaker is open, or it asked to wait). */
  admit(job: LeasedJob): number | null {
    const c = this.#find(job.payload);
    return c ? this.#targets.admit(c.target) : null;
  }

  /** Per target: breaker state and hold, for `GET /v1/triggers`. */
  breakerView(): Record<string, TargetView> {
    return this.#targets.view();
  }

  #find(payload: unknown): Compiled | undefined {
    const id = (payload as { trigger?: unknown } | null)?.trigger;
    return this.#compiled.find((x) => x.trigger.id === id);
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
    this.#compiled = this.#compileAll(parseTriggers(stored));
  }

  /** An action kind's handler: the policy comes from `webhooks.*`; handler-wide quarantine and breaker are off (the breaker is per target). */
  #resolveHandler(kind: ActionKind): ResolvedHandler {
    const { webhooks } = this.options.config;
    const base = resolveConfig({
      handlers: [{ name: kind.handler, retry: { maxAttempts: webhooks.maxAttempts }, timeoutMs: webhooks.timeoutMs + 5_000, run: () => null }],
    }, {}).handlers.get(kind.handler)!;
    return {
      ...base,
      quarantine: { ...base.quarantine, failures: Number.MAX_SAFE_INTEGER },
      breaker: { ...base.breaker, failures: Number.MAX_SAFE_INTEGER, ratio: 2 },
      run: (ctx: JobContext) => this.#deliver(kind, ctx),
    };
  }

  async #deliver(kind: ActionKind, ctx: JobContext): Promise<unknown> {
    const c = this.#find(ctx.job.payload);
    if (!c) throw new NonRetryableError(`trigger ${String((ctx.job.payload as { trigger?: unknown } | null)?.trigger)} no longer exists`);
    if (c.kind !== kind) throw new NonRetryableError(`trigger ${c.trigger.id} now has a ${c.kind.type} action, not ${kind.type}`);
    const event = ctx.event;
    if (!event) throw new NonRetryableError('the job has no event to deliver');
    const { action } = c.trigger;
    try {
      const result = await kind.deliver(action, {
        triggerId: c.trigger.id,
        job: { id: ctx.job.id, attempt: ctx.job.attempt },
        event: { id: event.id, name: event.name, data: event.data, tenant: event.tenant ?? null, receivedAt: event.receivedAt },
        signal: ctx.signal,
        clock: this.options.clock,
        config: this.options.config,
      });
      this.#targets.result(c.target, true);
      return result;
    } catch (caught) {
      const error = toError(caught);
      const message = redactValues(error.message, kind.credentials(action));
      if (error.name === 'ForbiddenTargetError' || error instanceof NonRetryableError) throw new NonRetryableError(message);
      if (error instanceof ActionFailure) {
        if (error.outcome.holdUntil !== undefined) this.#targets.hold(c.target, error.outcome.holdUntil);
        if (!ctx.signal.aborted) this.#targets.result(c.target, error.outcome.targetUp);
        throw error.outcome.retryable ? new Error(`${kind.type}: ${message}`) : new NonRetryableError(`${kind.type}: ${message}`);
      }
      if (!ctx.signal.aborted) this.#targets.result(c.target, false);
      throw new Error(`${kind.type} delivery to ${c.target} failed: ${message}`);
    }
  }

  #compile(trigger: StoredTrigger): Compiled {
    const kind = kindOf(trigger.action.type);
    if (!kind) throw new Error(`trigger ${trigger.id} has an unknown action type ${String(trigger.action.type)}`);
    const action = kind.parse(trigger.action as StoredActionBase) as StoredAction;
    const matches = compilePattern(trigger.on);
    const filter = trigger.filter === null || trigger.filter === undefined ? null : compileFilter(trigger.filter);
    return { trigger: { ...trigger, action }, kind, matches, filter, target: kind.target(action, this.options.config) };
  }

  #compileAll(triggers: readonly StoredTrigger[]): Compiled[] {
    return triggers.flatMap((t) => {
      try {
        return [this.#compile(t)];
      } catch {
        return []; // A trigger that no longer compiles (hand-edited row) routes nothing.
      }
    });
  }
}

function parseTriggers(raw: string | null): StoredTrigger[] {
  if (raw === null) return [];
  try {
    const parsed = JSON.parse(raw) as unknown;
    if (!Array.isArray(parsed)) return [];
    return (parsed as Array<StoredTrigger | null>)
      .filter((t): t is StoredTrigger => typeof t === 'object' && t !== null && typeof t.action === 'object' && t.action !== null)
      .map((t) => ({ ...t, action: t.action.type === undefined || t.action.type === 'webhook' ? legacyWebhook(t) : t.action }));
  } catch {
    return [];
  }
}

/**
 * A webhook action as stored by any version: rows from before other kinds
 * have no `type`, rows from before rotation a single `secret` (it becomes
 * the first of `secrets` and is not written back, so a retired one is gone).
 */
function legacyWebhook(t: StoredTrigger): WebhookAction {
  const { secret: _legacy, ...action } = t.action as WebhookAction & { secret?: unknown };
  return { ...action, type: 'webhook', secrets: storedSecrets(t.action as { secrets?: unknown; secret?: unknown }, t.createdAt) };
}

/**
 * A runtime trigger may debounce or throttle its deliveries. Batch is
 * refused: an action delivers one event (its templates and signatures are
 * built from it), so a list of events has no delivery to become.
 */
function runtimeTriggerControl(input: TriggerInput): TriggerControl | null {
  if (input.batch !== undefined) {
    throw new DroverError('validation', 'batch: runtime triggers take debounce or throttle, not batch (an action delivers one event); batch with a handler trigger instead');
  }
  const problems: string[] = [];
  const control = checkTriggerControl(input as unknown as Record<string, unknown>, '', (path, message) => problems.push(`${path.replace(/^\./, '') || 'trigger'}: ${message}`));
  if (problems.length > 0) throw new DroverError('validation', problems.join('; '));
  return control;
}
