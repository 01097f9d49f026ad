import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'
import base from '../../vitest.config.js'

// `npm run test:nginx`: the same settings as vitest.config.ts, but only the tests that
// need a real nginx (kept out of `npm test`, which must pass with nothing but Node).
export default defineConfig({
  ...base,
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    ...base.test,
    include: ['test/**/*.nginx.test.ts'],
    exclude: ['**/node_modules/**']
  }
})
