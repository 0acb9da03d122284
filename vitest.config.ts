import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Crash and e2e tests spawn runtimes; two cores do not gain from more parallel files.
    maxWorkers: 2,
    minWorkers: 1,
  },
});
