import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'
import base from '../../vitest.config.js'

// `npm run test:deploy`: the deployment checks that need tools from outside npm — Compose
// (Debian's docker-compose, or the docker compose plugin) and cfn-lint. Kept out of
// `npm test`, which must pass with nothing but Node. No database: no global setup.
export default defineConfig({
  ...base,
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    ...base.test,
    include: ['test/deploy/*.deploy.test.ts'],
    exclude: ['**/node_modules/**'],
    globalSetup: []
  }
})
