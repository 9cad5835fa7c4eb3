import { defineConfig } from 'vitest/config';

// Two cores: keep parallelism modest. Integration tests share one stack of real services (see test/global-setup.ts).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          maxWorkers: 2,
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'integration',
          // The soak (test/soak/) is one more file of this project: one file at a time, against its own fault bed.
          include: ['test/integration/**/*.test.ts', 'test/soak/**/*.test.ts'],
          globalSetup: ['test/integration/global-setup.ts'],
          maxWorkers: 1,
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
