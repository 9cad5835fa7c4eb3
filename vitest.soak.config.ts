import { defineConfig } from 'vitest/config';

// The soak (test/soak/): long, and kept out of `npm test` until its open hang is understood (see the test file).
export default defineConfig({
  test: {
    include: ['test/soak/**/*.test.ts'],
    globalSetup: ['test/integration/global-setup.ts'],
    maxWorkers: 1,
    fileParallelism: false,
    testTimeout: 1_200_000,
    hookTimeout: 600_000,
  },
});
