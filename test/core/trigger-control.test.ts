/**
 * Debounce, throttle and batch: the config checks (clear errors at start)
 * and the pure merge decisions the stores carry out (core/trigger-control.ts).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { resolveConfig, routeEventToTriggers } from '../../src/core/config.js';
import { DroverError } from '../../src/core/errors.js';
import { groupKeyFor, MAX_BATCH_SIZE, MAX_CONTROL_MS, planMerge, throttleIntervalMs, type TriggerControl } from '../../src/core/trigger-control.js';

const run = async () => undefined;

function problems(on: unknown): string[] {
  try {
    resolveConfig({ handlers: [{ name: 'h', on, run }] }, {});
  } catch (error) {
    expect(error).toBeInstanceOf(DroverError);
    return ((error as DroverError).extensions.errors as Array<{ path: string; message: string }>).map((i) => `${i.path}: ${i.message}`);
  }
  return [];
}

describe('trigger controls in the config', () => {
  it('resolves each control onto its trigger', () => {
    const config = resolveConfig(
      {
        handlers: [
          { name: 'd', on: [{ event: 'a', debounce: { windowMs: 100 } }, 'b'], run },
          { name: 't', on: { event: 'a', throttle: { key: 'tenant', limit: 5, periodMs: 1000 } }, run },
          { name: 'b', on: { event: 'a', batch: { key: 'data.customer.id', maxSize: 50, maxWaitMs: 2000 } }, run },
        ],
      },
      {},
    );
    const routes = routeEventToTriggers(config.handlers.values(), { name: 'a', data: {} });
    expect(routes.map((r) => [r.handler.name, r.index, r.trigger.control])).toEqual([
      ['d', 0, { kind: 'debounce', key: null, windowMs: 100, maxWaitMs: null }],
      ['t', 0, { kind: 'throttle', key: 'tenant', limit: 5, periodMs: 1000 }],
      ['b', 0, { kind: 'batch', key: 'data.customer.id', maxSize: 50, maxWaitMs: 2000 }],
    ]);
    expect(routeEventToTriggers(config.handlers.values(), { name: 'b', data: {} })[0]!.trigger.control).toBeNull();
  });

  it('rejects bad controls, naming the key and what is expected', () => {
    expect(problems({ event: 'a', debounce: { windowMs: 10 }, batch: { maxSize: 2, maxWaitMs: 10 } })).toEqual([
      'handlers[0].on: a trigger takes one of debounce, throttle, batch; got debounce and batch',
    ]);
    expect(problems({ event: 'a', debounce: { windowMs: 0 } })).toEqual(['handlers[0].on.debounce.windowMs: expected an integer from 1 to 2147483647, got 0']);
    expect(problems({ event: 'a', debounce: { windowMs: 500, maxWaitMs: 100 } })).toEqual(['handlers[0].on.debounce.maxWaitMs: expected at least windowMs (500), got 100']);
    expect(problems({ event: 'a', batch: { maxSize: 1001, maxWaitMs: 10 } })).toEqual(['handlers[0].on.batch.maxSize: expected an integer from 1 to 1000, got 1001']);
    expect(problems({ event: 'a', batch: { maxSize: 10 } })).toEqual(['handlers[0].on.batch.maxWaitMs: expected an integer from 1 to 2147483647, but it is missing']);
    expect(problems({ event: 'a', throttle: { limit: 1, periodMs: 10, key: 'payload.x' } })).toEqual([
      'handlers[0].on.throttle.key: expected "tenant" or "data.<path>" (e.g. "data.customerId")',
    ]);
    expect(problems({ event: 'a', throttle: { limit: 1, periodMs: 10, burst: 2 } })).toEqual(['handlers[0].on.throttle.burst: unknown key; allowed keys: key, limit, periodMs']);
    expect(problems({ event: 'a', throttle: 5 })).toEqual(['handlers[0].on.throttle: expected an object (key, limit, periodMs)']);
    expect(problems({ event: 'a', debounc: {} })).toEqual(['handlers[0].on.debounc: unknown key; allowed keys: event, filter, debounce, throttle, batch']);
  });
});

describe('grouping and merge decisions', () => {
  const debounce: TriggerControl = { kind: 'debounce', key: 'data.doc', windowMs: 100, maxWaitMs: 250 };
  const batch: TriggerControl = { kind: 'batch', key: null, maxSize: 2, maxWaitMs: 1000 };
  const event = (id: string, data: unknown) => ({ id, name: 'x', data, tenant: null, receivedAt: 0 });

  it('groups by trigger and key value; a missing value is the empty key; long values are hashed', () => {
    expect(groupKeyFor('h', 1, debounce, { doc: 'a' }, null)).toBe('debounce:h#1:a');
    expect(groupKeyFor('h', 1, debounce, {}, null)).toBe('debounce:h#1:');
    expect(groupKeyFor('h', 0, { ...debounce, key: 'tenant' }, {}, 'acme')).toBe('debounce:h#0:acme');
    expect(groupKeyFor('h', 0, debounce, { doc: 'x'.repeat(500) }, null)).toMatch(/^debounce:h#0:sha256:[0-9a-f]{64}$/);
  });

  it('debounce pushes the run back by the window, never past the first event + maxWaitMs', () => {
    const open = planMerge(debounce, null, event('e1', { n: 1 }), { n: 1 }, 1000, 1e6);
    expect(open).toEqual({ op: 'open', payloadText: '{"n":1}', runAt: 1100, until: 1250, due: false, closeOpen: false });
    const pushed = planMerge(debounce, { payloadText: '{"n":1}', runAt: 1100, until: 1250, count: 1 }, event('e2', { n: 2 }), { n: 2 }, 1090, 1e6);
    expect(pushed).toEqual({ op: 'update', payloadText: '{"n":2}', runAt: 1190, count: 2, due: false });
    const capped = planMerge(debounce, { payloadText: '{"n":2}', runAt: 1190, until: 1250, count: 2 }, event('e3', { n: 3 }), { n: 3 }, 1180, 1e6);
    expect(capped).toMatchObject({ op: 'update', runAt: 1250 });
    // Due but not yet staged: closed, and the event opens the next window.
    expect(planMerge(debounce, { payloadText: '{}', runAt: 1250, until: 1250, count: 3 }, event('e4', {}), {}, 1250, 1e6)).toMatchObject({ op: 'open', closeOpen: true });
  });

  it('batch appends in order, runs when full, and starts a new batch rather than outgrow the payload limit', () => {
    const first = planMerge(batch, null, event('e1', 1), 1, 0, 1e6);
    expect(first).toEqual({ op: 'open', payloadText: '{"events":[{"id":"e1","data":1,"tenant":null,"receivedAt":"1970-01-01T00:00:00.000Z"}]}', runAt: 1000, until: 1000, due: false, closeOpen: false });
    const full = planMerge(batch, { payloadText: first.payloadText, runAt: 1000, until: 1000, count: 1 }, event('e2', 2), 2, 5, 1e6);
    expect(full).toMatchObject({ op: 'update', runAt: 5, count: 2, due: true });
    expect(JSON.parse(full.payloadText).events.map((e: any) => e.id)).toEqual(['e1', 'e2']);
    const tooBig = planMerge(batch, { payloadText: first.payloadText, runAt: 1000, until: 1000, count: 1 }, event('e2', 2), 2, 5, first.payloadText.length + 10);
    expect(tooBig).toMatchObject({ op: 'open', closeOpen: true, runAt: 1005 });
  });

  it('throttle spaces slots evenly: limit per period', () => {
    expect(throttleIntervalMs({ kind: 'throttle', key: null, limit: 4, periodMs: 1000 })).toBe(250);
    expect(throttleIntervalMs({ kind: 'throttle', key: null, limit: 3, periodMs: 1000 })).toBe(334);
  });
});

describe('the docs', () => {
  const config = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
  const api = readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8');

  it('document every control key with the bounds the checks enforce', () => {
    const keys = { debounce: ['windowMs', 'maxWaitMs', 'key'], throttle: ['limit', 'periodMs', 'key'], batch: ['maxSize', 'maxWaitMs', 'key'] };
    for (const [kind, names] of Object.entries(keys)) {
      for (const name of names) expect(config).toContain(`| \`handlers[].on.${kind}.${name}\` |`);
    }
    expect(config).toContain(`(1–${MAX_BATCH_SIZE})`);
    expect(config).toContain(`${MAX_CONTROL_MS} ms`);
    expect(config).toContain('{ "events": [ { "id": "evt-1", "data"');
  });

  it('document the trigger field of event answers', () => {
    expect(api).toContain('"trigger":{"kind":"debounce","merged":true}');
    expect(api).toContain('"trigger":{"kind":"throttle","delayedMs":1500}');
  });
});
