/**
 * StoreHealth: a ping that fails or does not answer within its deadline makes
 * the store unreachable (with the reason), one ping at a time (a hung ping is
 * not joined by more), and the first answer makes it reachable again.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { StoreHealth } from '../../src/obs/store-health.js';
import { waitFor } from '../helpers/wait-for.js';

const logger = pino({ level: 'silent' });
let health: StoreHealth | null = null;
afterEach(() => health?.stop());

describe('StoreHealth', () => {
  it('turns unreachable on a hung ping within its deadline, pings one at a time, and recovers on the first answer', async () => {
    let pings = 0;
    let answer: (() => void) | null = null;
    let mode: 'ok' | 'hang' = 'ok';
    const store = {
      ping: () => {
        pings++;
        return mode === 'ok' ? Promise.resolve() : new Promise<void>((resolve) => (answer = resolve));
      },
    };
    health = new StoreHealth({ store, logger, everyMs: 20, timeoutMs: 100 });
    health.start();
    await waitFor(() => pings >= 2);
    expect(health.reachable).toBe(true);

    mode = 'hang';
    const lostAt = Date.now();
    await waitFor(() => !health!.reachable, { timeoutMs: 2_000 });
    expect(Date.now() - lostAt).toBeLessThan(1_000);
    expect(health.reason).toMatch(/^store unreachable for [\d.]+ s: no answer to a ping within 100 ms$/);
    const refused = health.unavailable();
    expect(refused.status).toBe(503);
    expect(refused.type).toBe('https://drover.dev/problems/store-unavailable');
    expect(refused.retryAfterSeconds).toBeGreaterThan(0);
    const hungPings = pings;
    await new Promise((resolve) => setTimeout(resolve, 200)); // ten ticks: none starts a second ping
    expect(pings).toBe(hungPings);

    mode = 'ok';
    answer!();
    await waitFor(() => health!.reachable, { timeoutMs: 2_000 });
    expect(health.reason).toBeNull();
  });

  it('turns unreachable on a failing ping, naming its error', async () => {
    health = new StoreHealth({ store: { ping: () => Promise.reject(new Error('connection refused')) }, logger, everyMs: 20, timeoutMs: 100 });
    health.start();
    await waitFor(() => !health!.reachable, { timeoutMs: 2_000 });
    expect(health.reason).toMatch(/connection refused$/);
  });
});
