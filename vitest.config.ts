import { defineConfig } from 'vitest/config';

/**
 * The runtime/API/e2e tier that runs on both engines: these files start their
 * nodes with `startTestNode`, which reads the engine from DROVER_TEST_ENGINE,
 * so the `postgres` project reruns them unchanged on the real server. A file
 * that is inherently SQLite-specific (a file on disk, its locks, its disk-full
 * path) stays out of this list, and so do:
 * - test/supervision/rate-limit.e2e.test.ts: it times the handler's first line
 *   with 50 ms of slack after admission; on PostgreSQL the start mark written
 *   in between is a round trip that a loaded machine stretches past that.
 *   Admission is the same in-memory code on both; shared limits on PostgreSQL
 *   have test/supervision/rate-limit-shared.test.ts.
 * - files that start `drover` child processes (e2e/cli, multinode, chaos):
 *   they choose their database themselves.
 */
const BOTH_ENGINES = [
  'test/api/workers.test.ts',
  'test/api/control.test.ts',
  'test/api/keys.test.ts',
  'test/api/stream.test.ts',
  'test/e2e/intake.test.ts',
  'test/e2e/named-wakeups.test.ts',
  'test/runtime/fallback-poll.test.ts',
  'test/e2e/execution.test.ts',
  'test/sdk/worker.test.ts',
  'test/sdk/client.test.ts',
  'test/api/work-key-scope.test.ts',
  'test/e2e/lease-duration.test.ts',
  'test/e2e/shutdown-outcome.test.ts',
  'test/api/auth-matrix.test.ts',
  'test/webhooks/webhook-action.test.ts',
  'test/durable/steps.test.ts',
  'test/durable/waits.test.ts',
  'test/api/worker-steps.test.ts',
  'test/sdk/worker-steps.test.ts',
  'test/api/interrupts.test.ts',
  'test/e2e/interrupt-flow.test.ts',
  'test/ops/snapshots.test.ts',
  'test/e2e/rollout.test.ts',
  'test/actions/http-action.test.ts',
  'test/actions/telegram-action.test.ts',
  'test/actions/mcp-action.test.ts',
  'test/actions/mcp-server.test.ts',
  'test/actions/target-state.test.ts',
  'test/console/session.test.ts',
  'test/console/bulk.test.ts',
  'test/console/search.test.ts',
  'test/e2e/lease-caps.test.ts',
  'test/e2e/trigger-controls.test.ts',
  'test/obs/retention-metrics.test.ts',
];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Fails a test file that leaves a timer, socket, server, child process or worker thread behind.
    setupFiles: ['test/helpers/leak-check.ts'],
    // Crash and e2e tests spawn runtimes; two cores do not gain from more parallel files.
    maxWorkers: 2,
    minWorkers: 1,
    projects: [
      { extends: true, test: { name: 'sqlite', include: ['test/**/*.test.ts'], env: { DROVER_TEST_ENGINE: 'sqlite' } } },
      { extends: true, test: { name: 'postgres', include: BOTH_ENGINES, env: { DROVER_TEST_ENGINE: 'postgres' } } },
    ],
  },
});
