/**
 * Lease order conformance (docs/configuration.md "Flow control"): weighted
 * priority with aging (the `priorityMs` stamp), tenant turns in fair queues
 * (`fair_tag`), and the restamp of waiting jobs after a weight change.
 * Through the storage interface only, so it runs unchanged on every engine;
 * time is a fake clock.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { STRICT_PRIORITY_MS } from '../../src/core/queue-policy.js';
import type { NewJob } from '../../src/core/types.js';
import type { EnqueueOptions, QueueLimit, StorageEngine } from '../../src/store/engine.js';
import type { StoreFactory } from './conformance.js';

const T0 = 1_700_000_000_000;

export function describeLeaseOrderConformance(name: string, factory: StoreFactory): void {
  describe(`lease order conformance: ${name}`, () => {
    let now = T0;
    let engine: StorageEngine;
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      now = T0;
      ({ engine, cleanup } = await factory(() => now));
      await engine.migrate();
    });
    afterEach(async () => {
      await cleanup();
    });

    const fair: EnqueueOptions = { queueLimits: new Map<string, QueueLimit>([['fair', { maxDepth: 100_000, fairness: 'tenant' }]]) };
    const job = (over: Partial<NewJob>): NewJob => ({ handler: 'h', queue: 'default', payload: null, priority: 0, runAt: now, maxAttempts: 3, ...over });
    const enqueue = async (jobs: Partial<NewJob>[], options?: EnqueueOptions) =>
      (await engine.enqueue(jobs.map(job), options)).map((r) => r.job.id);

    /** Lease one job at a time until none is left: the ids in lease order. */
    const drainOrder = async (handlers: string[] = ['h']): Promise<string[]> => {
      const order: string[] = [];
      for (;;) {
        const [leased] = await engine.lease({ workerId: 'w', handlers: handlers.map((n) => ({ name: n, max: 1 })), limit: 1, leaseMs: 60_000 });
        if (!leased) return order;
        order.push(leased.id);
      }
    };

    describe('weighted priority with aging', () => {
      it('a job waiting longer than its priority gap is worth overtakes newer higher-priority jobs; strict priority never lets it', async () => {
        for (const [priorityMs, expected] of [
          [10, ['early', 'low', 'late']],
          [STRICT_PRIORITY_MS, ['early', 'late', 'low']],
        ] as const) {
          now = T0;
          const [low] = await enqueue([{ priority: 0, priorityMs, handler: `h${priorityMs}` }]);
          now = T0 + 50; // ranks T0 + 50 - 10 × 10 = T0 - 50: ahead of `low`
          const [early] = await enqueue([{ priority: 10, priorityMs, handler: `h${priorityMs}` }]);
          now = T0 + 150; // T0 + 50: behind `low`, unless strict
          const [late] = await enqueue([{ priority: 10, priorityMs, handler: `h${priorityMs}` }]);
          const names = new Map([[low, 'low'], [early, 'early'], [late, 'late']]);
          expect((await drainOrder([`h${priorityMs}`])).map((id) => names.get(id))).toEqual(expected);
        }
      });

      it('holds the extreme priorities the config and API allow under the strict stamp (the rank fits 64 bits)', async () => {
        const [lowest] = await enqueue([{ priority: -1_000_000, priorityMs: STRICT_PRIORITY_MS }]);
        const [highest] = await enqueue([{ priority: 1_000_000, priorityMs: STRICT_PRIORITY_MS }]);
        expect(await drainOrder()).toEqual([highest, lowest]);
      });

      it('merges handlers and concurrency-keyed jobs in the same order', async () => {
        const [low] = await enqueue([{ handler: 'a', priority: 0, priorityMs: 10 }]);
        now = T0 + 50;
        const [early] = await enqueue([{ handler: 'b', priority: 10, priorityMs: 10, concurrencyKey: 'k', concurrencyLimit: 5 }]);
        now = T0 + 150;
        const [late] = await enqueue([{ handler: 'b', priority: 10, priorityMs: 10 }]);
        const leased = await engine.lease({ workerId: 'w', handlers: [{ name: 'a', max: 5 }, { name: 'b', max: 5 }], limit: 10, leaseMs: 60_000 });
        expect(leased.map((j) => j.id)).toEqual([early, low, late]);
      });
    });

    describe('fairness across tenants', () => {
      it('gives a quiet tenant the turn after the head, and a noisy tenant one turn per job, also within one batch', async () => {
        const noisy = await enqueue(Array.from({ length: 5 }, () => ({ queue: 'fair', tenant: 'noisy' })), fair);
        for (let i = 0; i < 5; i++) noisy.push(...(await enqueue([{ queue: 'fair', tenant: 'noisy' }], fair)));
        const [quiet] = await enqueue([{ queue: 'fair', tenant: 'quiet' }], fair);
        const [anonymous] = await enqueue([{ queue: 'fair' }], fair);
        // Turns: noisy 1..10; quiet and the tenant-less job join at turn 2, after noisy's job of that turn (older).
        expect(await drainOrder()).toEqual([noisy[0], noisy[1], quiet, anonymous, ...noisy.slice(2)]);
      });

      it('a job back from a backoff keeps its turn after the queue ran dry', async () => {
        const queued = await enqueue([{ queue: 'fair', tenant: 'a' }, { queue: 'fair', tenant: 'a' }], fair);
        const [retrying] = await enqueue([{ queue: 'fair', tenant: 'a', runAt: T0 + 1000 }], fair);
        expect(await drainOrder()).toEqual(queued);
        // Nothing queued: the head is a's scheduled turn (3), so b takes turn 4 rather than starting over at 1.
        const [b] = await enqueue([{ queue: 'fair', tenant: 'b' }], fair);
        now = T0 + 1000;
        await engine.stageDue();
        expect(await drainOrder()).toEqual([retrying, b]);
      });

      it('gives jobs with idempotency keys turns too, and events fan out into turns', async () => {
        const keyed = await enqueue([{ queue: 'fair', tenant: 'a', idempotencyKey: 'k1' }, { queue: 'fair', tenant: 'a', idempotencyKey: 'k2' }], fair);
        expect(await enqueue([{ queue: 'fair', tenant: 'a', idempotencyKey: 'k1' }], fair)).toEqual([keyed[0]]);
        const [ingested] = await engine.ingest([{ event: { id: 'e1', name: 'ev', data: null, tenant: 'b' }, jobs: [job({ queue: 'fair', tenant: 'b' })] }], fair);
        // a: turns 1 and 2; b's job joins at turn 2, younger than a's.
        expect(await drainOrder()).toEqual([keyed[0], keyed[1], ingested!.jobs[0]!.id]);
      });

      it('a tenant arriving mid-drain joins at the head, not behind the backlog', async () => {
        const noisy = await enqueue(Array.from({ length: 20 }, () => ({ queue: 'fair', tenant: 'noisy' })), fair);
        const first = await engine.lease({ workerId: 'w', handlers: [{ name: 'h', max: 8 }], limit: 8, leaseMs: 60_000 });
        expect(first.map((j) => j.id)).toEqual(noisy.slice(0, 8));
        const [quiet] = await enqueue([{ queue: 'fair', tenant: 'quiet' }], fair);
        // Head turn 9: quiet takes turn 10, behind noisy's jobs of turns 9 and 10 and nothing else.
        const next = await drainOrder();
        expect(next.indexOf(quiet!)).toBe(2);
        expect(next.filter((id) => id !== quiet)).toEqual(noisy.slice(8));
      });

      it('priority orders jobs that share a turn; without fairness the queue is one line', async () => {
        const [x] = await enqueue([{ queue: 'fair', tenant: 'x' }], fair);
        const [a] = await enqueue([{ queue: 'fair', tenant: 'a', priority: 0 }], fair);
        const [b] = await enqueue([{ queue: 'fair', tenant: 'b', priority: 5 }], fair);
        // x: turn 1; a and b both join at turn 2, where b's priority puts it first.
        expect(await drainOrder()).toEqual([x, b, a]);

        const plain = await enqueue(Array.from({ length: 3 }, () => ({ queue: 'fair', tenant: 'noisy' })));
        const [quiet] = await enqueue([{ queue: 'fair', tenant: 'quiet' }]);
        expect(await drainOrder()).toEqual([...plain, quiet]);
      });

      it("lines up a tenant's scheduled jobs behind its queued ones", async () => {
        const [queued] = await enqueue([{ queue: 'fair', tenant: 'a' }], fair);
        const later = await enqueue([{ queue: 'fair', tenant: 'a', runAt: T0 + 1000 }, { queue: 'fair', tenant: 'a', runAt: T0 + 1000 }], fair);
        const [b] = await enqueue([{ queue: 'fair', tenant: 'b' }], fair);
        now = T0 + 1000;
        await engine.stageDue();
        // a: turns 1, 2, 3 (its scheduled jobs count toward its tail); b joins at turn 2 and, older, goes first in it.
        expect(await drainOrder()).toEqual([queued, b, later[0], later[1]]);
      });
    });

    describe('restampJobs', () => {
      it('gives waiting jobs of the named queues the new stamp, window by window, and leaves others alone', async () => {
        const [low] = await enqueue([{ priority: 0 }]);
        now = T0 + 50;
        const [high] = await enqueue([{ priority: 10 }]);
        const [other] = await enqueue([{ handler: 'o', queue: 'other', priority: 0 }]);
        const filler = await enqueue(Array.from({ length: 5 }, () => ({ handler: 'x', priority: 10 })));
        let restamped = 0;
        let calls = 0;
        let afterId: string | null = null;
        do {
          const result = await engine.restampJobs({ stamps: [{ queue: 'default', priorityMs: 1, fairness: 'none' }], afterId, span: 2 });
          restamped += result.restamped;
          afterId = result.nextAfterId;
          calls++;
        } while (afterId !== null && calls < 20);
        expect(afterId).toBeNull();
        expect(calls).toBe(Math.ceil((filler.length + 3) / 2));
        expect(restamped).toBe(2 + filler.length);
        // 10 levels are now worth 10 ms of waiting: `low` waited 50 ms longer, it goes first.
        expect(await drainOrder()).toEqual([low, high]);
        expect(await drainOrder(['h'])).toEqual([]);
        expect((await engine.getJob(other!))!.state).toBe('queued');

        // Nothing waiting: done at once.
        await drainOrder(['x']);
        await engine.lease({ workerId: 'w', handlers: [{ name: 'h', max: 5 }], limit: 5, leaseMs: 1 });
        expect(await engine.restampJobs({ stamps: [{ queue: 'other', priorityMs: 1, fairness: 'none' }], afterId: null, span: 100 })).toEqual({ restamped: 1, nextAfterId: null });
        expect(await engine.restampJobs({ stamps: [{ queue: 'other', priorityMs: 1, fairness: 'none' }], afterId: null, span: 100 })).toEqual({ restamped: 0, nextAfterId: null });
      });

      it('clears the turns of a queue that is no longer fair, and keeps them in one that still is', async () => {
        const stamp = { queue: 'fair', priorityMs: STRICT_PRIORITY_MS };
        const turns = await enqueue([{ queue: 'fair', tenant: 'a' }, { queue: 'fair', tenant: 'a' }], fair);
        expect(await engine.restampJobs({ stamps: [{ ...stamp, fairness: 'tenant' }], afterId: null, span: 100 })).toEqual({ restamped: 0, nextAfterId: null });
        // Unfair from now on: a new job (turn 0) would otherwise go before both, and before every later one.
        expect(await engine.restampJobs({ stamps: [{ ...stamp, fairness: 'none' }], afterId: null, span: 100 })).toEqual({ restamped: 2, nextAfterId: null });
        const [later] = await enqueue([{ queue: 'fair', tenant: 'b' }]);
        expect(await drainOrder()).toEqual([...turns, later]);
      });
    });
  });
}
