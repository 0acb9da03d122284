/**
 * The CLI's HTTP client for commands that talk to a running node
 * (`DROVER_URL`, default http://127.0.0.1:7070, and `DROVER_API_KEY`).
 */
import { DroverError } from '../core/errors.js';

/**
 * One authorised API call to the node at DROVER_URL; throws with the status
 * and the problem's detail on a non-2xx answer.
 *
 * @example
 * const status = await call('GET', '/v1/status');
 */
export async function call(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<unknown> {
  const url = (process.env.DROVER_URL || 'http://127.0.0.1:7070').replace(/\/$/, '');
  const key = process.env.DROVER_API_KEY;
  if (!key) throw new DroverError('unauthorized', 'set DROVER_API_KEY to an API key (create one with `drover keys create --scopes admin`)');
  let response: Response;
  try {
    response = await fetch(url + path, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (error) {
    throw new DroverError('store_unavailable', `cannot reach drover at ${url} (${(error as Error).message}); is it running? set DROVER_URL`);
  }
  const text = await response.text();
  const parsed = text ? (JSON.parse(text) as Record<string, unknown>) : null;
  if (!response.ok) throw new Error(`${response.status} ${String(parsed?.title ?? '')}: ${String(parsed?.detail ?? text)}`);
  return parsed;
}

/** Print a JSON answer for humans and `jq`. */
export const print = (value: unknown): void => {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
};
