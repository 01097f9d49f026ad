import { defineConfig } from 'vitest/config'

// `npm run test:browser`: the dashboard driven by Debian's Chromium (apt-get install chromium)
// through playwright-core, against a real server. Not part of `npm test`, which needs only Node.
export default defineConfig({
  test: {
    include: ['test/browser/**/*.browser.ts'],
    testTimeout: 180_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 1,
    // One flow, step by step: each test builds on the state the previous one left.
    sequence: { concurrent: false }
  }
})
