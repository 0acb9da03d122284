/**
 * The built-in probe handler `drover.smoke`: every node runs it, so
 * `drover smoke` can prove after a deploy that an event goes in through the
 * API, is routed, leased, run and completed — the whole path — without
 * touching a user handler. It subscribes to the event `drover.smoke`, runs
 * once (no retries, 10 s timeout) on the `default` queue and returns
 * `{ ok: true, job }`. A user handler of the same name replaces it.
 */
import { resolveConfig, type ResolvedHandler } from '../../core/config.js';

export const SMOKE_HANDLER = 'drover.smoke';
export const SMOKE_EVENT = 'drover.smoke';

let cached: ResolvedHandler | null = null;

/** The probe handler, resolved with the same defaults as a user's handler; startNode passes it to the runtime as a built-in. */
export function smokeHandler(): ResolvedHandler {
  cached ??= resolveConfig(
    {
      handlers: [
        {
          name: SMOKE_HANDLER,
          on: SMOKE_EVENT,
          retry: { maxAttempts: 1 },
          timeoutMs: 10_000,
          run: (ctx: { job: { id: string } }) => ({ ok: true, job: ctx.job.id }),
        },
      ],
    },
    {},
  ).handlers.get(SMOKE_HANDLER)!;
  return cached;
}
