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

export const BUCKET_MS = 10_000;
export const BUCKETS = 30;

export interface Bucket {
  start: number;
  succeeded: number;
  failed: number;
}

/**
 * What the overview shows, kept here rather than in the screen so it survives
 * moving between screens: attempt outcomes per 10 s since the console opened,
 * and the latest job changes.
 */
const outcomes = new Map<number, Bucket>();
let recent: JobMessage[] = [];

function record(message: JobMessage): void {
  recent = [message, ...recent.filter((m) => m.id !== message.id)].slice(0, 15);
  const failed = message.outcome !== undefined && message.outcome !== 'released';
  if (message.state !== 'succeeded' && !failed) return;
  const start = Math.floor(Date.parse(message.at) / BUCKET_MS) * BUCKET_MS;
  const bucket = outcomes.get(start) ?? { start, succeeded: 0, failed: 0 };
  if (message.state === 'succeeded') bucket.succeeded++;
  else bucket.failed++;
  outcomes.set(start, bucket);
}

/** The last BUCKETS buckets up to now, oldest first. */
export function throughput(now = Date.now()): Bucket[] {
  const last = Math.floor(now / BUCKET_MS) * BUCKET_MS;
  for (const key of outcomes.keys()) if (key <= last - BUCKETS * BUCKET_MS) outcomes.delete(key);
  return Array.from({ length: BUCKETS }, (_, i) => {
    const start = last - (BUCKETS - 1 - i) * BUCKET_MS;
    return outcomes.get(start) ?? { start, succeeded: 0, failed: 0 };
  });
}

export const recentJobs = (): readonly JobMessage[] => recent;

export function startLive(): void {
  if (source) return;
  source = new EventSource('/v1/stream');
  const emit = (kind: Kind, data: unknown) => {
    if (isJob(kind, data)) record(data);
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
  outcomes.clear();
  recent = [];
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
