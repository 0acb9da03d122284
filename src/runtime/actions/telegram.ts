/**
 * The `telegram` action: `sendMessage` through the Bot API
 * (`<actions.telegramApiUrl>/bot<token>/sendMessage`). The token comes from a
 * secret reference and sits in the request path, so it is scrubbed from
 * every error. A 429 carries `parameters.retry_after` (seconds): the attempt
 * fails and nothing more goes to the Bot API until then, on any node.
 */
import { DroverError } from '../../core/errors.js';
import { redactValues } from '../../core/redact.js';
import { compileTemplate, htmlEscape, markdownV2Escape, renderTemplate, type Escaper } from '../../core/template.js';
import { ActionFailure, checkTimeout, statusFailure, templateScope, TEMPLATE_ROOTS, timeoutOf, type ActionKind, type StoredActionBase } from './action.js';
import { assertAllowedTarget, sendRequest } from './net.js';
import { checkSecretRef, revealSecret, secretRefView, secretValue, type SecretRef } from './secret-ref.js';

export const PARSE_MODES = ['HTML', 'MarkdownV2', 'Markdown'] as const;

export interface TelegramAction extends StoredActionBase {
  type: 'telegram';
  token: SecretRef;
  /** A chat id (`-1001234567890`) or a channel's `@username`. */
  chatId: string;
  /** The message: a text template. */
  text: string;
  parseMode: (typeof PARSE_MODES)[number] | null;
  disableNotification: boolean;
}

/** Telegram's limit on a message, in characters (after templating). */
const MAX_MESSAGE_CHARS = 4096;
/** Longest wait a `retry_after` may impose (Telegram asks for seconds to minutes). */
const MAX_RETRY_AFTER_S = 3_600;

/** Values entering the message are escaped for its parse mode, so event data cannot inject markup. */
const ESCAPERS: Record<(typeof PARSE_MODES)[number], Escaper> = {
  HTML: htmlEscape,
  MarkdownV2: markdownV2Escape,
  Markdown: (text) => text.replace(/[_*`[]/g, '\\$&'),
};

export const telegramAction: ActionKind<TelegramAction> = {
  type: 'telegram',
  handler: 'drover.telegram',

  async create(input, ctx) {
    compileTemplate(String(input.text), 'action.text', TEMPLATE_ROOTS);
    const token = checkSecretRef(input.token, 'action.token');
    const chatId = String(input.chatId);
    if (!/^(-?\d{1,20}|@[A-Za-z0-9_]{5,32})$/.test(chatId)) throw new DroverError('validation', 'action.chatId: expected a numeric chat id or a channel @username');
    // Last: the input is right, the node's setting is what refuses it.
    if (!ctx.config.webhooks.allowPrivateNetworks) await assertAllowedTarget(new URL(ctx.config.actions.telegramApiUrl), 'actions.telegramApiUrl');
    return {
      type: 'telegram',
      token,
      chatId,
      text: String(input.text),
      parseMode: (input.parseMode as TelegramAction['parseMode'] | undefined) ?? null,
      disableNotification: input.disableNotification === true,
      timeoutMs: checkTimeout(input.timeoutMs, ctx),
    };
  },

  parse: (stored) => stored,

  target: (_action, config) => new URL(config.actions.telegramApiUrl).host,

  view: (action) => ({ type: 'telegram', token: secretRefView(action.token), chatId: action.chatId, text: action.text, parseMode: action.parseMode, disableNotification: action.disableNotification, timeoutMs: action.timeoutMs }),

  credentials: (action) => [secretValue(action.token)].filter((v): v is string => v !== null && v.length >= 4),

  async deliver(action, delivery) {
    const token = revealSecret(action.token, 'action.token');
    const escape = action.parseMode ? ESCAPERS[action.parseMode] : undefined;
    const text = renderTemplate(compileTemplate(action.text, 'action.text', TEMPLATE_ROOTS), templateScope(delivery), escape);
    if (text.trim() === '') throw new ActionFailure('the message is empty after templating (Telegram refuses empty messages)', { targetUp: true, retryable: false });
    const base = delivery.config.actions.telegramApiUrl;
    const response = await sendRequest({
      url: `${base}/bot${token}/sendMessage`,
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'drover-telegram' },
      body: JSON.stringify({
        chat_id: action.chatId,
        text: text.length > MAX_MESSAGE_CHARS ? `${text.slice(0, MAX_MESSAGE_CHARS - 1)}…` : text,
        ...(action.parseMode ? { parse_mode: action.parseMode } : {}),
        ...(action.disableNotification ? { disable_notification: true } : {}),
      }),
      timeoutMs: timeoutOf(action, delivery),
      allowPrivateNetworks: delivery.config.webhooks.allowPrivateNetworks,
      signal: delivery.signal,
      maxBodyChars: 65_536,
    });
    const answer = parseAnswer(redactValues(response.body, [token]));
    const host = new URL(base).host;
    if (response.status === 200 && answer?.ok === true) {
      return { messageId: answer.result?.message_id ?? null, chatId: answer.result?.chat?.id ?? action.chatId };
    }
    const detail = answer?.description ?? redactValues(response.body, [token]).slice(0, 200);
    if (response.status === 429) {
      const seconds = Math.min(Math.max(Number(answer?.parameters?.retry_after) || 1, 1), MAX_RETRY_AFTER_S);
      return Promise.reject(new ActionFailure(`Telegram Bot API ${host} answered 429 (retry after ${seconds} s): ${detail}`, { targetUp: true, retryable: true, holdUntil: delivery.clock() + seconds * 1000 }));
    }
    throw statusFailure(`Telegram Bot API ${host}`, response.status, detail);
  },
};

interface BotAnswer {
  ok?: boolean;
  description?: string;
  result?: { message_id?: number; chat?: { id?: number | string } };
  parameters?: { retry_after?: number };
}

function parseAnswer(text: string): BotAnswer | null {
  try {
    const parsed = JSON.parse(text) as unknown;
    return typeof parsed === 'object' && parsed !== null ? (parsed as BotAnswer) : null;
  } catch {
    return null;
  }
}
