/**
 * The `webhook` action: POST the event envelope, signed with the trigger's
 * secrets (signing-secrets.ts), to a receiver. It is the `http` action with
 * a fixed method, body and headers, sent through the same `callHttp`.
 */
import { createHmac } from 'node:crypto';
import { actionCredentials, redactWebhookAction } from '../../core/redact.js';
import { checkTimeout, checkUrl, timeoutOf, type ActionKind, type StoredActionBase } from './action.js';
import { callHttp, checkHeaders } from './http.js';
import { makeSecret, type WebhookSecret } from './signing-secrets.js';

export interface WebhookAction extends StoredActionBase {
  type: 'webhook';
  url: string;
  /** Every active secret signs each delivery: one, or two during a rotation. */
  secrets: WebhookSecret[];
  headers: Record<string, string>;
}

/** Headers Drover sets itself; a trigger may not override them. */
const RESERVED_HEADERS = new Set(['content-type', 'content-length', 'host', 'user-agent', 'x-drover-signature', 'x-drover-timestamp', 'x-drover-event', 'x-drover-delivery', 'transfer-encoding', 'connection']);

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

export const webhookAction: ActionKind<WebhookAction> = {
  type: 'webhook',
  handler: 'drover.webhook',

  async create(input, ctx) {
    const url = await checkUrl(input.url, 'action.url', ctx);
    return {
      type: 'webhook',
      url: url.toString(),
      secrets: [makeSecret(input.secret as string | undefined, ctx.clock())],
      timeoutMs: checkTimeout(input.timeoutMs, ctx),
      headers: checkHeaders(input.headers, RESERVED_HEADERS),
    };
  },

  parse(stored) {
    if (stored.secrets.length === 0) throw new Error('webhook action has no signing secret');
    return { ...stored, timeoutMs: stored.timeoutMs ?? null, headers: stored.headers ?? {} };
  },

  target: (action) => new URL(action.url).host,

  view: (action) => redactWebhookAction(action) as unknown as Record<string, unknown>,

  credentials: (action) => actionCredentials(action),

  async deliver(action, delivery) {
    const { event, job } = delivery;
    const body = JSON.stringify({
      id: event.id,
      name: event.name,
      data: event.data,
      tenant: event.tenant,
      receivedAt: new Date(event.receivedAt).toISOString(),
      trigger: delivery.triggerId,
    });
    const timestamp = Math.floor(delivery.clock() / 1000);
    const headers: Record<string, string> = {
      ...action.headers,
      'content-type': 'application/json',
      'user-agent': 'drover-webhook',
      'x-drover-event': event.name,
      'x-drover-delivery': job.id,
      'x-drover-timestamp': String(timestamp),
      'x-drover-signature': signWebhook(action.secrets.map((s) => s.secret), job.id, timestamp, body),
    };
    const { status } = await callHttp(
      { url: action.url, method: 'POST', headers, body, timeoutMs: timeoutOf(action, delivery), expected: (s) => s >= 200 && s < 300, credentials: actionCredentials(action) },
      delivery,
    );
    return { status };
  },
};
