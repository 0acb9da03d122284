/**
 * The `telegram` action against a fake Bot API written here (a protocol peer
 * on localhost, `actions.telegramApiUrl` pointing at it): sendMessage with
 * the templated text escaped for its parse mode, the token from a secret
 * reference (environment or stored) never shown, `retry_after` on 429
 * honoured for every delivery to the API, and refusals.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';
import { actionConfig, createTrigger, job, send, settled } from './support.js';

const TOKEN = '7012345678:AAH-fake-bot-token-for-tests_x9';
const ENV_TOKEN = '7099999999:AAE-env-bot-token-for-tests_q2';

interface BotCall {
  at: number;
  token: string;
  method: string;
  body: Record<string, unknown>;
}

let node: TestNode | undefined;
const servers: Server[] = [];
afterEach(async () => {
  await node?.close();
  node = undefined;
  delete process.env.DROVER_SECRET_TEST_TG;
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});

/** A Bot API: `answer(call, n)` gives status and JSON for the n-th call (1-based). */
async function botApi(answer: (call: BotCall, n: number) => { status: number; json: unknown }): Promise<{ url: string; calls: BotCall[] }> {
  const calls: BotCall[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (raw += c));
    req.on('end', () => {
      const match = /^\/bot([^/]+)\/(\w+)$/.exec(req.url ?? '');
      const call = { at: Date.now(), token: match?.[1] ?? '', method: match?.[2] ?? '', body: JSON.parse(raw || '{}') as Record<string, unknown> };
      calls.push(call);
      const out = answer(call, calls.length);
      res.writeHead(out.status, { 'content-type': 'application/json' }).end(JSON.stringify(out.json));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, calls };
}

const sent = (call: BotCall, id: number) => ({ status: 200, json: { ok: true, result: { message_id: id, chat: { id: Number(call.body.chat_id) }, text: call.body.text } } });

describe('telegram action', () => {
  it('sends the templated message, escaped for HTML, with the token from the environment', async () => {
    const bot = await botApi((call, n) => sent(call, 100 + n));
    process.env.DROVER_SECRET_TEST_TG = ENV_TOKEN;
    node = await startTestNode(actionConfig({ actions: { telegramApiUrl: bot.url } }));
    const { body } = await createTrigger(node, {
      type: 'telegram',
      token: { env: 'DROVER_SECRET_TEST_TG' },
      chatId: -1001234567890,
      text: '<b>Order {{data.orderId}}</b> from {{data.customer}}',
      parseMode: 'HTML',
      disableNotification: true,
    });
    expect(body.action).toEqual({ type: 'telegram', token: { env: 'DROVER_SECRET_TEST_TG' }, chatId: '-1001234567890', text: '<b>Order {{data.orderId}}</b> from {{data.customer}}', parseMode: 'HTML', disableNotification: true, timeoutMs: null });
    const id = await send(node, 'drover.telegram', { orderId: 17, customer: '<script>&' });
    const done = await settled(node, id);
    expect(done.state).toBe('succeeded');
    expect(done.result).toEqual({ messageId: 101, chatId: -1001234567890 });
    expect(bot.calls).toHaveLength(1);
    expect(bot.calls[0]).toMatchObject({ token: ENV_TOKEN, method: 'sendMessage', body: { chat_id: '-1001234567890', text: '<b>Order 17</b> from &lt;script&gt;&amp;', parse_mode: 'HTML', disable_notification: true } });
  });

  it('honours retry_after on 429: that delivery and every other to the API wait, unspent, until it passes', async () => {
    const bot = await botApi((call, n) => (n === 1 ? { status: 429, json: { ok: false, error_code: 429, description: 'Too Many Requests: retry after 3', parameters: { retry_after: 3 } } } : sent(call, n)));
    node = await startTestNode(actionConfig({ actions: { telegramApiUrl: bot.url } }));
    await createTrigger(node, { type: 'telegram', token: { value: TOKEN }, chatId: '@drover_test_channel', text: 'order {{data.n}}' });
    const first = await send(node, 'drover.telegram', { n: 1 });
    await waitFor(async () => bot.calls.length === 1 && (await job(node!, first)).attempts.length === 1, { message: 'the 429' });
    const limitedAt = bot.calls[0]!.at;
    const second = await send(node, 'drover.telegram', { n: 2 });
    const [a, b] = [await settled(node, first), await settled(node, second)];
    expect(a.state).toBe('succeeded');
    expect(b.state).toBe('succeeded');
    // The backoff alone (1 s, full jitter) would have retried sooner; the hold is what kept both back.
    for (const call of bot.calls.slice(1)) expect(call.at - limitedAt).toBeGreaterThanOrEqual(2_900);
    expect(bot.calls.map((c) => c.body.text).sort()).toEqual(['order 1', 'order 1', 'order 2']);
    expect(a.attempts.filter((x) => x.outcome !== 'released')).toHaveLength(2);
    expect(b.attempts.filter((x) => x.outcome !== 'released')).toHaveLength(1);
    expect(a.attempts[0]!.error).toContain('retry after 3 s');
    expect(JSON.stringify(a)).not.toContain(TOKEN);
  });

  it('a refusal (chat not found) is final, the token scrubbed from the error; a stored token is never shown', async () => {
    const bot = await botApi(() => ({ status: 400, json: { ok: false, error_code: 400, description: `Bad Request: chat not found (bot ${TOKEN})` } }));
    node = await startTestNode(actionConfig({ actions: { telegramApiUrl: bot.url } }));
    const { id: triggerId, body } = await createTrigger(node, { type: 'telegram', token: { value: TOKEN }, chatId: '42', text: 'hi {{event.name}}', parseMode: 'MarkdownV2' });
    expect(body.action.token).toEqual({ value: '[redacted]' });
    const done = await settled(node, await send(node, 'drover.telegram', {}));
    expect(done).toMatchObject({ state: 'dead', deadReason: 'non_retryable' });
    expect(done.lastError).toContain('chat not found');
    expect(done.lastError).not.toContain(TOKEN);
    expect(bot.calls[0]!.body.text).toBe('hi order\\.created');
    const everything = JSON.stringify([(await node.request('GET', '/v1/triggers')).body, (await node.request('GET', '/v1/audit')).body, done, node.logLines]);
    expect(everything).not.toContain(TOKEN);
    expect((await node.request('POST', `/v1/triggers/${triggerId}/rotate-secret`, {})).status).toBe(409);
  });

  it('a missing environment secret fails the delivery at once, naming the variable', async () => {
    const bot = await botApi((call) => sent(call, 1));
    node = await startTestNode(actionConfig({ actions: { telegramApiUrl: bot.url } }));
    await createTrigger(node, { type: 'telegram', token: { env: 'DROVER_SECRET_TEST_TG' }, chatId: '42', text: 'hi' });
    const done = await settled(node, await send(node, 'drover.telegram', {}));
    expect(done).toMatchObject({ state: 'dead', deadReason: 'non_retryable' });
    expect(done.lastError).toContain('DROVER_SECRET_TEST_TG is not set');
    expect(bot.calls).toHaveLength(0);
  });

  it('refuses bad input: an env name without the prefix, a bad chat id, an API base URL on a private network unless allowed', async () => {
    const bot = await botApi((call) => sent(call, 1));
    node = await startTestNode(actionConfig({ actions: { telegramApiUrl: bot.url }, webhooks: { allowPrivateNetworks: false } }));
    const base = { type: 'telegram', token: { value: TOKEN }, chatId: '42', text: 'hi' };
    for (const [action, type] of [
      [{ ...base, token: { env: 'DROVER_DATABASE_URL' } }, 'validation'],
      [{ ...base, token: { env: 'DROVER_SECRET_X', value: 'both' } }, 'validation'],
      [{ ...base, chatId: 'not a chat' }, 'validation'],
      [{ ...base, text: '{{data.a | upper}}' }, 'validation'],
      [{ ...base, parseMode: 'BBCode' }, 'validation'],
      [base, 'forbidden-target'],
    ] as const) {
      const res = await node.request('POST', '/v1/triggers', { on: 'order.*', action });
      expect(res.status, JSON.stringify(action)).toBe(422);
      expect(res.body.type).toBe(`https://drover.dev/problems/${type}`);
    }
    // Stored past the create check (by a node that allowed private networks): refused when it connects.
    const stored = [{ id: 'trg_tg_stored', on: 'order.*', filter: null, createdAt: 0, action: { type: 'telegram', token: { value: TOKEN }, chatId: '42', text: 'hi', parseMode: null, disableNotification: false, timeoutMs: null } }];
    await node.store.updateMeta('webhook_triggers', () => JSON.stringify(stored));
    await node.runtime.triggers.load();
    const done = await settled(node, await send(node, 'drover.telegram', {}));
    expect(done).toMatchObject({ state: 'dead', deadReason: 'non_retryable' });
    expect(done.lastError).toMatch(/loopback, private, link-local or metadata/);
    expect(done.lastError).not.toContain(TOKEN);
    expect(bot.calls).toHaveLength(0);
  });

  it('the config refuses a telegramApiUrl that is not a base URL', async () => {
    for (const telegramApiUrl of ['ftp://x', 'https://user:pw@api.example.com', 'https://api.example.com/?token=1', 'not a url']) {
      await expect(startTestNode(actionConfig({ actions: { telegramApiUrl } }))).rejects.toThrow(/actions\.telegramApiUrl/);
    }
  });
});
