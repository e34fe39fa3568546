import { defineConfig } from 'vitest/config';

// Three projects: pure TS (unit), WGSL on a real WebGPU device through Dawn (gpu), real Chromium (e2e).
// The gpu project runs files one at a time: each file owns one Dawn device and the software driver
// is CPU-bound, so parallel files only fight over the two cores.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'gpu',
          include: ['test/gpu/**/*.test.ts'],
          environment: 'node',
          // A kernel-tuning cache of its own per file: CLI runs never touch ~/.cache/tunelab.
          setupFiles: ['test/gpu/setup-env.ts'],
          pool: 'forks',
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          environment: 'node',
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
