/**
 * The remote-worker lease protocol's bounds (POST /v1/workers/lease and
 * heartbeat). In core because the config check needs the longest long-poll
 * too: a connection idle timeout shorter than it would cut waiting leases.
 */
export const LEASE_LIMITS = {
  maxJobs: 100,
  leaseMs: { min: 1_000, max: 3_600_000, default: 30_000 },
  waitMs: { max: 60_000, default: 0 },
} as const;
