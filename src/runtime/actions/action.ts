/**
 * The one small interface every built-in action kind implements (webhook,
 * http, telegram, mcp), and what they share. A kind validates its part of
 * `POST /v1/triggers`, names the target it connects to (the key of the
 * per-target circuit breaker), shows itself redacted, lists the credentials
 * to scrub from errors, and delivers one event. Everything else (storage,
 * fan-out, retries with backoff, the breaker shared across nodes, holding a
 * target that asked to wait, redaction of errors) is runtime-triggers.ts,
 * once for all kinds.
 */
import type { ResolvedConfig } from '../../core/config.js';
import { DroverError } from '../../core/errors.js';
import { assertAllowedTarget } from './net.js';

/** The event a delivery carries, as the job sees it. */
export interface DeliveryEvent {
  id: string;
  name: string;
  data: unknown;
  tenant: string | null;
  receivedAt: number;
}

/** One delivery attempt of one trigger's action. */
export interface Delivery {
  triggerId: string;
  job: { id: string; attempt: number };
  event: DeliveryEvent;
  signal: AbortSignal;
  clock: () => number;
  config: Pick<ResolvedConfig, 'webhooks' | 'actions'>;
}

/** What a kind needs to validate a new action. */
export interface CreateContext {
  clock: () => number;
  config: Pick<ResolvedConfig, 'webhooks' | 'actions'>;
}

/** The fields every stored action has. */
export interface StoredActionBase {
  type: string;
  timeoutMs: number | null;
}

/**
 * A built-in action kind.
 *
 * @example
 * const kind: ActionKind<TelegramAction> = telegramAction;
 * await kind.deliver(action, delivery); // { messageId: 17, chatId: '-100…' }, the job's result
 */
export interface ActionKind<A extends StoredActionBase = StoredActionBase> {
  readonly type: A['type'];
  /** The built-in handler whose jobs run this kind's deliveries (`drover.<type>`). */
  readonly handler: string;
  /** Validate the `action` member of `POST /v1/triggers` (already schema-checked) into what is stored. */
  create(input: Record<string, unknown>, ctx: CreateContext): Promise<A>;
  /** A stored action as it runs (older stored shapes normalised); throws when it can no longer run. */
  parse(stored: A): A;
  /** `host:port` the action connects to: the key of its breaker. */
  target(action: A, config: Pick<ResolvedConfig, 'actions'>): string;
  /** The action as the API, logs and the audit trail show it: no credential in it. */
  view(action: A): Record<string, unknown>;
  /** Credential values to scrub from anything a delivery records (errors, results). */
  credentials(action: A): string[];
  /** Deliver one event; the value is the job's result. Failures throw (`ActionFailure` says how). */
  deliver(action: A, delivery: Delivery): Promise<unknown>;
}

/**
 * A failed delivery, saying what it means for the target and the job:
 * `targetUp` (the target answered: its breaker counts a success), `retryable`
 * (false: the job is dead at once), `holdUntil` (the target asked to wait:
 * nothing goes to it before then, e.g. Telegram's `retry_after`).
 *
 * @example
 * throw new ActionFailure('api.example.com answered HTTP 404', { targetUp: true, retryable: false });
 */
export class ActionFailure extends Error {
  constructor(
    message: string,
    readonly outcome: { targetUp: boolean; retryable: boolean; holdUntil?: number },
  ) {
    super(message);
    this.name = 'ActionFailure';
  }
}

/**
 * An HTTP status outside the expected ones as a failure: 408, 429 and 5xx are
 * retried (the target is struggling: its breaker counts a failure); any other status
 * is not (the request is what the target refuses, and it is up).
 *
 * @example
 * statusFailure('api.example.com', 503, 'busy'); // ActionFailure, retryable, target down
 */
export function statusFailure(target: string, status: number, detail: string): ActionFailure {
  const text = `${target} answered HTTP ${status}${detail ? `: ${detail}` : ''}`;
  // An unexpected 2xx or 3xx (redirects are not followed) will not change on a retry either.
  if (status < 500 && status !== 408 && status !== 429) return new ActionFailure(text, { targetUp: true, retryable: false });
  return new ActionFailure(text, { targetUp: false, retryable: true });
}

/** Roots a template may read (docs/actions.md, "Templates"). */
export const TEMPLATE_ROOTS = ['data', 'event', 'trigger', 'job'] as const;

/**
 * What a template sees: the event's data at `data`, the event (`id`, `name`,
 * `tenant`, `receivedAt`, `data`) at `event`, the trigger id at `trigger.id`,
 * the delivery at `job.id` and `job.attempt`.
 *
 * @example
 * renderTemplate(compileTemplate('{{data.orderId}}', 'text', TEMPLATE_ROOTS), templateScope(delivery)); // 'o-17'
 */
export function templateScope(delivery: Delivery): Record<string, unknown> {
  const { event } = delivery;
  const view = { id: event.id, name: event.name, tenant: event.tenant, receivedAt: new Date(event.receivedAt).toISOString(), data: event.data };
  return { data: event.data, event: view, trigger: { id: delivery.triggerId }, job: delivery.job };
}

/** The per-request timeout: the action's own, else `webhooks.timeoutMs`. */
export function timeoutOf(action: StoredActionBase, delivery: Delivery): number {
  return action.timeoutMs ?? delivery.config.webhooks.timeoutMs;
}

/** Validate an action's `timeoutMs` against `webhooks.timeoutMs`, the handler's bound. */
export function checkTimeout(timeoutMs: unknown, ctx: CreateContext): number | null {
  if (timeoutMs === undefined || timeoutMs === null) return null;
  const bound = ctx.config.webhooks.timeoutMs;
  if (typeof timeoutMs !== 'number' || timeoutMs > bound) throw new DroverError('validation', `action.timeoutMs: at most webhooks.timeoutMs (${bound})`);
  return timeoutMs;
}

/**
 * Parse an action's URL: http(s), no credentials in it (they would be shown
 * wherever the URL is), and the SSRF guard's create-time check.
 */
export async function checkUrl(raw: unknown, field: string, ctx: CreateContext): Promise<URL> {
  let url: URL;
  try {
    url = new URL(String(raw));
  } catch {
    throw new DroverError('validation', `${field}: not a URL: ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new DroverError('validation', `${field}: expected an http or https URL`);
  if (url.username || url.password) throw new DroverError('validation', `${field}: credentials in the URL are not allowed; use action.headers or a secret reference`);
  if (!ctx.config.webhooks.allowPrivateNetworks) await assertAllowedTarget(url, field);
  return url;
}
