import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two cores: more files at once only makes timing-sensitive tests slower.
    maxWorkers: 2,
    minWorkers: 1,
    reporters: ['default'],
    // Each entry prepares what some tests need; docker-setup does nothing unless a docker test runs.
    globalSetup: ['test/helpers/docker-setup.ts', 'test/helpers/postgres-global-setup.ts'],
    // Per test file: stops the keepers its servers started (workloads outlive a server).
    setupFiles: ['test/helpers/keeper-cleanup.ts'],
  },
});
