/**
 * Secret references: where an action's credential (a Telegram bot token, an
 * MCP server's auth header) comes from. Either
 * - `{"env": "DROVER_SECRET_…"}`: read from the node's environment at every
 *   delivery, so the value is in neither the store nor its backups (set it
 *   on every node; rotate it by changing the variable and restarting). Only
 *   names starting with `DROVER_SECRET_` may be referenced: a trigger's
 *   creator must not be able to send `DROVER_DATABASE_URL` to a server of
 *   their choosing.
 * - `{"value": "…"}`: stored with the trigger, write-only like a webhook's
 *   signing secret (shown as `[redacted]`, scrubbed from errors).
 */
import { DroverError, NonRetryableError } from '../../core/errors.js';
import { REDACTED } from '../../core/redact.js';

export const SECRET_ENV_PREFIX = 'DROVER_SECRET_';

export type SecretRef = { env: string } | { value: string };

/** The JSON schema of a secret reference (the route and docs share it). */
export const secretRefSchema = {
  oneOf: [
    { type: 'object', required: ['env'], additionalProperties: false, properties: { env: { type: 'string', pattern: '^DROVER_SECRET_[A-Z0-9_]{1,100}$' } } },
    { type: 'object', required: ['value'], additionalProperties: false, properties: { value: { type: 'string', minLength: 1, maxLength: 4096 } } },
  ],
} as const;

/** Validate a reference (schema-checked already; this is the rule the schema cannot word). */
export function checkSecretRef(ref: unknown, field: string): SecretRef {
  const r = ref as Partial<{ env: unknown; value: unknown }> | null;
  if (r && typeof r.env === 'string') {
    if (!r.env.startsWith(SECRET_ENV_PREFIX)) throw new DroverError('validation', `${field}.env: only variables named ${SECRET_ENV_PREFIX}* may be referenced`);
    return { env: r.env };
  }
  if (r && typeof r.value === 'string' && r.value !== '') return { value: r.value };
  throw new DroverError('validation', `${field}: expected {"env": "${SECRET_ENV_PREFIX}NAME"} or {"value": "…"}`);
}

/**
 * The secret's value now. A missing variable fails the delivery for good,
 * naming the variable (a retry on the same node would find it missing too).
 *
 * @example
 * revealSecret({ env: 'DROVER_SECRET_TELEGRAM' }, 'action.token'); // the variable's value, read now
 */
export function revealSecret(ref: SecretRef, field: string, env: NodeJS.ProcessEnv = process.env): string {
  if ('value' in ref) return ref.value;
  const value = env[ref.env];
  if (value === undefined || value === '') throw new NonRetryableError(`${field}: environment variable ${ref.env} is not set on this node; set it on every node and retry the job`);
  return value;
}

/** The value if it can be known now (for scrubbing), else null. */
export function secretValue(ref: SecretRef, env: NodeJS.ProcessEnv = process.env): string | null {
  if ('value' in ref) return ref.value;
  return env[ref.env] || null;
}

/**
 * A reference as shown: an env reference as is (a name, not a secret), a
 * stored value as `[redacted]`.
 *
 * @example
 * secretRefView({ value: '123:abc' }); // { value: '[redacted]' }
 */
export function secretRefView(ref: SecretRef): SecretRef {
  return 'value' in ref ? { value: REDACTED } : { env: ref.env };
}
