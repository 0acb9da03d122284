/**
 * Redaction of webhook receiver credentials, pure. A trigger's header values
 * (`Authorization: Bearer …`), its URL's query values (`?token=…`) and
 * userinfo, and its signing secrets are credentials for the receiver: the
 * API, the audit trail (readable with less than `admin`), logs and backups
 * of the audit export must show their names but never their values. Every
 * place a trigger is serialized or audited goes through `redactWebhookAction`.
 */

/** What a redacted value reads as. */
export const REDACTED = '[redacted]';

/**
 * The URL with every query value, the userinfo and the fragment replaced by
 * `[redacted]`; scheme, host, port, path and query keys stay readable.
 * Something that is not a URL is redacted whole.
 *
 * @example
 * redactUrl('https://u:p@hooks.example.com/in?token=abc&team=x'); // 'https://[redacted]@hooks.example.com/in?token=[redacted]&team=[redacted]'
 */
export function redactUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return REDACTED;
  }
  const userinfo = url.username || url.password ? `${REDACTED}@` : '';
  const query = url.search === '' ? '' : `?${url.search.slice(1).split('&').map((pair) => {
    const eq = pair.indexOf('=');
    return eq < 0 ? pair : `${pair.slice(0, eq)}=${REDACTED}`;
  }).join('&')}`;
  const fragment = url.hash === '' ? '' : `#${REDACTED}`;
  return `${url.protocol}//${userinfo}${url.host}${url.pathname}${query}${fragment}`;
}

/**
 * Header names with every value replaced by `[redacted]`: which header
 * carries a credential is the receiver's convention, so none is trusted.
 *
 * @example
 * redactHeaders({ Authorization: 'Bearer abc' }); // { Authorization: '[redacted]' }
 */
export function redactHeaders(headers: Readonly<Record<string, string>> | null | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of Object.keys(headers ?? {})) out[name] = REDACTED;
  return out;
}

/** A signing secret as shown: its id and age, never its value. */
export interface SecretView {
  id: string;
  createdAt: string;
}

/** The wire shape of a webhook action: nothing in it is a credential. */
export interface WebhookActionView {
  type: 'webhook';
  url: string;
  timeoutMs: number | null;
  headers: Record<string, string>;
  secrets: SecretView[];
}

/**
 * A webhook action as the API, logs and the audit trail may show it: header
 * values, query values and userinfo redacted, signing secrets reduced to
 * their ids (any other member, such as a legacy `secret`, is dropped).
 *
 * @example
 * redactWebhookAction({ type: 'webhook', url: 'https://h/x?k=v', timeoutMs: null, headers: { 'x-api-key': 's3cr3t' }, secrets: [{ id: 'whs_1', secret: 'whsec_…', createdAt: 0 }] });
 * // { type: 'webhook', url: 'https://h/x?k=[redacted]', timeoutMs: null, headers: { 'x-api-key': '[redacted]' }, secrets: [{ id: 'whs_1', createdAt: '1970-01-01T00:00:00.000Z' }] }
 */
export function redactWebhookAction(action: {
  type: 'webhook';
  url: string;
  timeoutMs: number | null;
  headers: Readonly<Record<string, string>>;
  secrets: ReadonlyArray<{ id: string; createdAt: number }>;
}): WebhookActionView {
  return {
    type: 'webhook',
    url: redactUrl(action.url),
    timeoutMs: action.timeoutMs,
    headers: redactHeaders(action.headers),
    secrets: action.secrets.map((s) => ({ id: s.id, createdAt: new Date(s.createdAt).toISOString() })),
  };
}

/**
 * The credentials a webhook action holds, as strings to look for: secret
 * values, header values and URL query values and userinfo (at least 4
 * characters, so a `?page=1` does not redact every "1").
 */
export function actionCredentials(action: { url: string; headers: Readonly<Record<string, string>>; secrets: ReadonlyArray<{ secret: string }> }): string[] {
  const out = [...action.secrets.map((s) => s.secret), ...Object.values(action.headers).flatMap(credentialParts)];
  try {
    const url = new URL(action.url);
    out.push(url.username, url.password, ...[...url.searchParams.values()]);
    out.push(...url.search.slice(1).split('&').map((pair) => pair.slice(pair.indexOf('=') + 1)));
  } catch {
    // not a URL: nothing more to find
  }
  return [...new Set(out.filter((v) => v.length >= 4))];
}

/**
 * A credential and, for an `Authorization`-style value (`Bearer abc…`,
 * `Basic …`), the part after its scheme, which is what a server usually
 * echoes.
 *
 * @example
 * credentialParts('Bearer abc123'); // ['Bearer abc123', 'abc123']
 */
export function credentialParts(value: string): string[] {
  const match = /^[A-Za-z][A-Za-z0-9-]*\s+(\S.*)$/.exec(value);
  return match ? [value, match[1]!] : [value];
}

/**
 * `text` with every occurrence of each of `values` replaced by `[redacted]`:
 * for what a receiver answers, which some echo the request back with.
 *
 * @example
 * redactValues('echo: Bearer abc123', ['Bearer abc123']); // 'echo: [redacted]'
 */
export function redactValues(text: string, values: readonly string[]): string {
  let out = text;
  // Longest first, so a value that contains another is replaced whole.
  for (const value of [...values].sort((a, b) => b.length - a.length)) if (value) out = out.split(value).join(REDACTED);
  return out;
}
