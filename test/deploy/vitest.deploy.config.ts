import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'
import base from '../../vitest.config.js'

// `npm run test:deploy`: the deployment checks that need Compose (Debian's docker-compose, or
// the docker compose plugin), which .ci/run installs. Kept out of `npm test`, which must pass
// with nothing but Node. No database: no global setup. (cfn-lint: `npm run lint:cfn`.)
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
