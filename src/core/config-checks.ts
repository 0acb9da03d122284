/**
 * Checks of the config beyond its schema: what zod cannot say key by key
 * (trigger patterns and filters, cron expressions, duplicate handler names,
 * settings that must agree with each other). Each problem is pushed onto
 * the caller's list, so config.ts reports them all in one error.
 */
import { compileCron, isValidTimezone } from './cron.js';
import { DroverError } from './errors.js';
import { LEASE_LIMITS } from './lease-limits.js';
import { compileFilter } from './filter.js';
import { DEFAULT_CHANNELS } from './rollout.js';
import { compilePattern } from './trigger.js';
import { checkTriggerControl } from './trigger-control.js';
import { DEFAULTS } from './config-defaults.js';
import { formatKey, got, NAME_EXPECTED, NAME_RE, ROUTE_KEY_EXPECTED, ROUTE_KEY_RE, type ConfigIssue } from './config-schema.js';
import type { ResolvedTrigger } from './config.js';

/**
 * Check `raw` (the config file's default export) beyond its schema, pushing
 * each problem onto `issues`; returns each handler's compiled triggers by its
 * index in `handlers`.
 *
 * @example
 * const issues: ConfigIssue[] = [];
 * checkBeyondSchema({ handlers: [{ name: 'a', on: 'user.*', run: async () => {} }] }, issues).get(0)?.[0]?.pattern; // 'user.*'
 */
export function checkBeyondSchema(raw: unknown, issues: ConfigIssue[]): Map<number, ResolvedTrigger[]> {
  const triggers = new Map<number, ResolvedTrigger[]>();
  const handlers = isRecord(raw) && Array.isArray(raw.handlers) ? (raw.handlers as unknown[]) : [];
  const seen = new Map<string, number>();
  handlers.forEach((h, i) => {
    if (!isRecord(h)) return;
    const at = `handlers[${i}]`;
    triggers.set(i, checkTriggers(h.on, `${at}.on`, issues));
    const tz = typeof h.cronTimezone === 'string' && isValidTimezone(h.cronTimezone) ? h.cronTimezone : 'UTC';
    checkCron(h.cron, tz, `${at}.cron`, issues);
    if (h.remote === true && h.run !== undefined) {
      issues.push({ path: `${at}.run`, message: 'a remote handler (remote: true) has no run; remote workers run its jobs' });
    } else if (h.remote !== true && h.run === undefined) {
      issues.push({ path: `${at}.run`, message: 'expected a function run(ctx), but it is missing (or set remote: true if remote workers run this handler)' });
    }
    if (typeof h.name === 'string') {
      const first = seen.get(h.name);
      if (first === undefined) seen.set(h.name, i);
      else issues.push({ path: `${at}.name`, message: `duplicate handler name "${h.name}" (also handlers[${first}].name)` });
    }
  });
  if (isRecord(raw) && isRecord(raw.queues)) {
    for (const queue of Object.keys(raw.queues)) {
      if (!NAME_RE.test(queue)) issues.push({ path: `queues${formatKey(queue)}`, message: `invalid queue name; ${NAME_EXPECTED}` });
    }
  }
  if (isRecord(raw) && isRecord(raw.cluster)) {
    // Peers must not declare a node dead between two of its heartbeats.
    const beat = typeof raw.cluster.heartbeatMs === 'number' ? raw.cluster.heartbeatMs : DEFAULTS.cluster.heartbeatMs;
    const dead = typeof raw.cluster.deadNodeMs === 'number' ? raw.cluster.deadNodeMs : DEFAULTS.cluster.deadNodeMs;
    if (dead < 2 * beat) issues.push({ path: 'cluster.deadNodeMs', message: `expected at least twice cluster.heartbeatMs (${2 * beat}), got ${dead}` });
  }
  if (isRecord(raw) && isRecord(raw.server)) {
    // Node refuses a header timeout longer than the request timeout that contains it.
    const request = typeof raw.server.requestTimeoutMs === 'number' ? raw.server.requestTimeoutMs : DEFAULTS.server.requestTimeoutMs;
    const headers = typeof raw.server.headersTimeoutMs === 'number' ? raw.server.headersTimeoutMs : DEFAULTS.server.headersTimeoutMs;
    if (headers > request) issues.push({ path: 'server.headersTimeoutMs', message: `expected at most server.requestTimeoutMs (${request}), got ${headers}` });
    // A socket is silent while a lease long-polls (`waitMs`, at most 60 s): a shorter idle timeout would cut it.
    const idle = raw.server.connectionTimeoutMs;
    if (typeof idle === 'number' && idle > 0 && idle < LEASE_LIMITS.waitMs.max + 5_000) {
      issues.push({ path: 'server.connectionTimeoutMs', message: `expected 0 (off) or at least ${LEASE_LIMITS.waitMs.max + 5_000} (above the longest lease waitMs), got ${idle}` });
    }
  }
  if (isRecord(raw) && isRecord(raw.rollout) && typeof raw.rollout.channel === 'string') {
    const channels = Array.isArray(raw.rollout.channels) ? (raw.rollout.channels as unknown[]) : [...DEFAULT_CHANNELS];
    if (!channels.includes(raw.rollout.channel)) {
      issues.push({ path: 'rollout.channel', message: `"${raw.rollout.channel}" is not one of the channels (${channels.join(', ')}); name one of them, or list yours in rollout.channels` });
    }
  }
  if (isRecord(raw) && isRecord(raw.rateLimit) && isRecord(raw.rateLimit.routes)) {
    for (const route of Object.keys(raw.rateLimit.routes)) {
      if (!ROUTE_KEY_RE.test(route)) issues.push({ path: `rateLimit.routes${formatKey(route)}`, message: `invalid route; ${ROUTE_KEY_EXPECTED}` });
    }
  }
  return triggers;
}

/** `on`: a pattern string, `{ event, filter?, debounce? | throttle? | batch? }`, or an array of either. */
function checkTriggers(on: unknown, path: string, issues: ConfigIssue[]): ResolvedTrigger[] {
  if (on === undefined) return [];
  const specs = Array.isArray(on) ? on.map((spec, j) => [spec, `${path}[${j}]`] as const) : [[on, path] as const];
  const out: ResolvedTrigger[] = [];
  for (const [spec, at] of specs) {
    if (typeof spec === 'string') {
      const t = trigger(spec, undefined, at, at, issues);
      if (t) out.push(t);
    } else if (isRecord(spec)) {
      for (const key of Object.keys(spec)) {
        if (!TRIGGER_KEYS.includes(key)) issues.push({ path: `${at}.${key}`, message: `unknown key; allowed keys: ${TRIGGER_KEYS.join(', ')}` });
      }
      if (typeof spec.event !== 'string') {
        issues.push({ path: `${at}.event`, message: `expected an event name or pattern, ${got(spec.event)}` });
        continue;
      }
      const t = trigger(spec.event, spec.filter, `${at}.event`, `${at}.filter`, issues);
      const control = checkTriggerControl(spec, at, (path, message) => issues.push({ path, message }));
      if (t) out.push({ ...t, control });
    } else {
      issues.push({ path: at, message: `expected an event pattern string or { event, filter }, ${got(spec)}` });
    }
  }
  return out;
}

const TRIGGER_KEYS = ['event', 'filter', 'debounce', 'throttle', 'batch'];

function trigger(pattern: string, filter: unknown, patternAt: string, filterAt: string, issues: ConfigIssue[]): ResolvedTrigger | null {
  let matches: ((name: string) => boolean) | null = null;
  let compiled: ((data: unknown) => boolean) | null = null;
  try {
    matches = compilePattern(pattern);
  } catch (error) {
    issues.push({ path: patternAt, message: messageOf(error) });
  }
  if (filter !== undefined) {
    try {
      compiled = compileFilter(filter, filterAt);
    } catch (error) {
      // compileFilter names the exact spot inside the filter (e.g. `…filter.amount`).
      const ext = error instanceof DroverError ? error.extensions : {};
      issues.push({
        path: typeof ext.path === 'string' ? ext.path : filterAt,
        message: typeof ext.problem === 'string' ? ext.problem : messageOf(error),
      });
      return null;
    }
  }
  return matches === null ? null : { pattern, matches, filter: compiled, control: null };
}

function checkCron(cron: unknown, tz: string, path: string, issues: ConfigIssue[]): void {
  if (cron === undefined) return;
  const list = Array.isArray(cron) ? cron.map((c, j) => [c, `${path}[${j}]`] as const) : [[cron, path] as const];
  for (const [expr, at] of list) {
    if (typeof expr !== 'string') {
      issues.push({ path: at, message: `expected a cron expression string (or an array of them), ${got(expr)}` });
      continue;
    }
    try {
      compileCron(expr, tz);
    } catch (error) {
      issues.push({ path: at, message: messageOf(error) });
    }
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A plain object (not null, not an array): a config section to look into. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
