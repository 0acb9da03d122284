/**
 * One EventSource on `GET /v1/stream` for the whole console (the cookie goes
 * with it; GET needs no CSRF token). Screens subscribe to the messages they
 * care about and re-read what changed: the stream drives every refresh, so
 * an idle node costs the console nothing.
 */
import type { JobMessage } from './api';

type Kind = 'job' | 'handler' | 'queue' | 'gap' | 'open' | 'error';
type Listener = (kind: Kind, data: unknown) => void;

const listeners = new Set<Listener>();
let source: EventSource | null = null;
let status: 'connecting' | 'live' | 'reconnecting' = 'connecting';

export const liveStatus = () => status;

export function startLive(): void {
  if (source) return;
  source = new EventSource('/v1/stream');
  const emit = (kind: Kind, data: unknown) => {
    for (const listener of listeners) listener(kind, data);
  };
  source.onopen = () => {
    status = 'live';
    emit('open', null);
  };
  source.onerror = () => {
    status = 'reconnecting';
    emit('error', null);
  };
  for (const kind of ['job', 'handler', 'queue', 'gap'] as const) {
    source.addEventListener(kind, (event) => emit(kind, JSON.parse((event as MessageEvent<string>).data)));
  }
}

export function stopLive(): void {
  source?.close();
  source = null;
  status = 'connecting';
}

export function subscribe(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export const isJob = (kind: Kind, data: unknown): data is JobMessage => kind === 'job' && typeof data === 'object' && data !== null;

/**
 * `fn` at most once per `ms`, trailing: a burst of stream messages becomes one
 * re-read, and the last message of the burst is never missed.
 */
export function throttle(fn: () => void, ms: number): { (): void; cancel(): void } {
  let timer: ReturnType<typeof setTimeout> | null = null;
  let last = 0;
  const run = () => {
    timer = null;
    last = Date.now();
    fn();
  };
  const call = () => {
    if (timer) return;
    timer = setTimeout(run, Math.max(0, last + ms - Date.now()));
  };
  call.cancel = () => {
    if (timer) clearTimeout(timer);
    timer = null;
  };
  return call;
}
