/**
 * Read `GET /v1/stream` (Server-Sent Events) with `fetch`, so the API key
 * travels in the Authorization header. `readEvents` parses one connection;
 * the client's `stream()` reconnects with `Last-Event-ID` around it.
 */
import type { StreamMessage } from './types.js';

export interface SseFrame {
  id: string | undefined;
  event: string;
  data: string;
}

/** Parse an SSE body into frames (comments and heartbeats are skipped). Ends when the body ends. */
export async function* readFrames(body: ReadableStream<Uint8Array>): AsyncGenerator<SseFrame> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  let buffer = '';
  let id: string | undefined;
  let event = '';
  let data: string[] = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let newline: number;
      while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + (buffer.startsWith('\r\n', newline) ? 2 : 1));
        if (line === '') {
          if (data.length > 0 || event !== '') yield { id, event: event || 'message', data: data.join('\n') };
          event = '';
          data = [];
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'id') id = value;
        else if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
      }
    }
  } finally {
    reader.cancel().catch(() => undefined);
  }
}

/** A frame as a typed stream message; null for frames this SDK does not know. */
export function toMessage(frame: SseFrame): StreamMessage | null {
  if (!['job', 'handler', 'queue', 'interrupt', 'gap'].includes(frame.event)) return null;
  try {
    return { id: frame.id ?? '', event: frame.event, data: JSON.parse(frame.data) } as StreamMessage;
  } catch {
    return null;
  }
}
