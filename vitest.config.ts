import { defineConfig } from 'vitest/config';

// Tests by layer. `npm test` runs every project; `npm run test:<layer>` one of them.
// unit: no server, no child service (seconds); integration: real servers over mTLS in-process or
// as child processes; e2e: whole federations; fault: kill -9, full disks, stopped processes;
// adversarial: attacks on credentials and slivers.
const layers = {
  unit: ['test/unit/**/*.test.ts', 'test/property/**/*.test.ts'],
  integration: ['test/integration/**/*.test.ts'],
  e2e: ['test/e2e/**/*.test.ts'],
  fault: ['test/fault/**/*.test.ts'],
  adversarial: ['test/adversarial/**/*.test.ts'],
} as const;

export default defineConfig({
  test: {
    setupFiles: ['test/helpers/setup.ts'],
    pool: 'forks',
    // The machine has two cores; more workers only add contention to servers under test.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    teardownTimeout: 20_000,
    projects: Object.entries(layers).map(([name, include]) => ({ extends: true, test: { name, include: [...include] } })),
  },
});
