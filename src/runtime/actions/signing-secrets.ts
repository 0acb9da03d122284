/**
 * A trigger's signing secrets: one normally, two during a rotation (both sign
 * every delivery, so receivers switch over at their own pace and nothing is
 * refused in between). `POST /v1/triggers/:id/rotate-secret` adds the new one,
 * `POST /v1/triggers/:id/retire-secret` drops the old one.
 */
import { randomBytes } from 'node:crypto';
import { DroverError } from '../../core/errors.js';

export interface WebhookSecret {
  /** Names the secret in the API and the audit trail (the value is never shown after it is made). */
  id: string;
  secret: string;
  createdAt: number;
}

/** Two: the one receivers know and the one they are moving to. */
export const MAX_ACTIVE_SECRETS = 2;

/**
 * A new secret: `value` when the caller chose one, else `whsec_` + 24 random bytes.
 *
 * @example
 * makeSecret(undefined, Date.now()); // { id: 'whs_…', secret: 'whsec_…', createdAt: … }
 */
export function makeSecret(value: string | undefined, now: number): WebhookSecret {
  return { id: `whs_${randomBytes(8).toString('hex')}`, secret: value ?? `whsec_${randomBytes(24).toString('base64url')}`, createdAt: now };
}

/** The secrets with `added` appended; 409 when a rotation is already under way. */
export function withSecret(triggerId: string, secrets: readonly WebhookSecret[], added: WebhookSecret): WebhookSecret[] {
  if (secrets.length >= MAX_ACTIVE_SECRETS) {
    throw new DroverError('invalid_state', `trigger ${triggerId} already has ${MAX_ACTIVE_SECRETS} active secrets (${secrets.map((s) => s.id).join(', ')}); retire one with POST /v1/triggers/${triggerId}/retire-secret first`);
  }
  return [...secrets, added];
}

/**
 * The secrets without `secretId` (default: the oldest); 409 when it is the
 * last one (a trigger always signs), 404 when the trigger has no such secret.
 */
export function withoutSecret(triggerId: string, secrets: readonly WebhookSecret[], secretId: string | undefined): { kept: WebhookSecret[]; retired: WebhookSecret } {
  const retired = secretId === undefined ? secrets[0] : secrets.find((s) => s.id === secretId);
  if (!retired) throw new DroverError('not_found', `trigger ${triggerId} has no secret "${secretId}"; active: ${secrets.map((s) => s.id).join(', ')}`);
  if (secrets.length <= 1) {
    throw new DroverError('invalid_state', `secret ${retired.id} is the only secret of trigger ${triggerId}; add its successor with POST /v1/triggers/${triggerId}/rotate-secret first`);
  }
  return { kept: secrets.filter((s) => s !== retired), retired };
}

/**
 * The secrets of a stored action, reading the single `secret` that triggers
 * stored before rotation existed (it becomes the first secret, created with
 * the trigger).
 */
export function storedSecrets(action: { secrets?: unknown; secret?: unknown }, createdAt: number): WebhookSecret[] {
  if (Array.isArray(action.secrets)) {
    return action.secrets.filter((s): s is WebhookSecret => typeof s === 'object' && s !== null && typeof (s as WebhookSecret).secret === 'string' && typeof (s as WebhookSecret).id === 'string');
  }
  if (typeof action.secret === 'string') return [{ id: 'whs_initial', secret: action.secret, createdAt }];
  return [];
}
