/**
 * The handlers the console's browser tests drive: a job held at a gate until
 * the test opens it (to watch it run live), event subscribers, a handler that
 * fails each job once, one that fails until told otherwise (quarantine), and
 * a durable one that asks a person (the inbox).
 */
import { NonRetryableError } from '../../src/core/errors.js';
import type { DroverConfig } from '../../src/core/handler.js';

/** What the tests steer: open a gate, make `fragile` healthy. */
export const steer = {
  gates: new Map<string, () => void>(),
  fragileBroken: true,
};
const failedOnce = new Set<string>();

export const consoleConfig: Omit<DroverConfig, 'databaseUrl'> = {
  handlers: [
    {
      name: 'greet',
      run: async (ctx) => {
        const gate = (ctx.job.payload as { gate?: string }).gate;
        if (gate) await new Promise<void>((resolve) => steer.gates.set(gate, resolve));
        return { greeted: true };
      },
    },
    { name: 'notify', on: 'order.created', run: async () => 'sent' },
    { name: 'orders', queue: 'billing', on: 'order.created', run: async (ctx) => ({ charged: (ctx.job.payload as { orderId: string }).orderId }) },
    {
      name: 'flaky',
      retry: { maxAttempts: 1 },
      quarantine: { failures: 1000 },
      breaker: { failures: 1000, minRequests: 1000 },
      run: async (ctx) => {
        if (!failedOnce.has(ctx.job.id)) {
          failedOnce.add(ctx.job.id);
          throw new NonRetryableError('the card was declined');
        }
        return 'recovered';
      },
    },
    {
      name: 'fragile',
      retry: { maxAttempts: 1 },
      quarantine: { failures: 2, windowMs: 60_000 },
      run: async () => {
        if (steer.fragileBroken) throw new Error('downstream says no');
        return 'ok';
      },
    },
    {
      name: 'approve-refund',
      async run(ctx) {
        const { orderId, amount } = ctx.job.payload as { orderId: string; amount: number };
        const order = await ctx.step.run('load-order', () => ({ id: orderId, amount }));
        const decision = await ctx.step.interrupt<{ approve: boolean; note?: string; reason: string }>('manager-approval', {
          prompt: `Refund ${order.amount} for ${order.id}?`,
          schema: {
            type: 'object',
            properties: { approve: { type: 'boolean' }, reason: { enum: ['damaged', 'late', 'other'] }, note: { type: 'string', maxLength: 20 } },
            required: ['approve', 'reason'],
          },
        });
        return { refunded: decision?.approve === true, decision };
      },
    },
  ],
  queues: { billing: {} },
  rateLimit: { enabled: false },
};
