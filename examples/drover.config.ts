/**
 * Example handlers: `npm start` runs these. Try:
 *   curl -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \
 *     -d '{"name":"order.created","data":{"orderId":"o-1","total":120,"customer":{"country":"DE"}},"id":"evt-1"}' \
 *     http://127.0.0.1:7070/v1/events
 */
import { defineConfig, defineHandler, NonRetryableError } from 'drover';

interface Order {
  orderId: string;
  total: number;
  customer?: { country?: string };
}

const reserveStock = defineHandler<Order>({
  name: 'reserve-stock',
  on: 'order.created',
  concurrency: 20,
  async run(ctx) {
    ctx.log.info({ orderId: ctx.job.payload.orderId }, 'stock reserved');
    return { reserved: true };
  },
});

const reviewLargeOrder = defineHandler<Order>({
  name: 'review-large-order',
  on: { event: 'order.created', filter: { total: { $gte: 100 } } },
  retry: { maxAttempts: 3, backoff: { initialMs: 500 } },
  async run(ctx) {
    if (typeof ctx.job.payload.total !== 'number') throw new NonRetryableError('order has no numeric total');
    ctx.log.info({ orderId: ctx.job.payload.orderId, total: ctx.job.payload.total }, 'large order flagged for review');
  },
});

const auditTrail = defineHandler({
  name: 'audit-order-events',
  on: 'order.*',
  // One at a time per tenant: a noisy tenant cannot starve the others.
  concurrencyKey: 'tenant',
  async run(ctx) {
    ctx.log.info({ event: ctx.event?.name, tenant: ctx.event?.tenant }, 'order event recorded');
  },
});

const dailyReport = defineHandler({
  name: 'daily-report',
  cron: '0 6 * * *',
  timeoutMs: 60_000,
  async run(ctx) {
    ctx.log.info('daily report generated');
  },
});

export default defineConfig({
  handlers: [reserveStock, reviewLargeOrder, auditTrail, dailyReport],
  queues: { default: { maxDepth: 100_000 } },
});
