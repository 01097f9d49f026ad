import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'
import base from '../../vitest.config.js'

// `npm run lint:cfn`: AWS's cfn-lint over the template, on top of the structural checks that
// `npm test` runs. cfn-lint comes from PyPI (`pip install cfn-lint`), which neither Debian nor
// the npm registry provides, so CI cannot install it and this is a tool for developers who have it.
export default defineConfig({
  ...base,
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    ...base.test,
    include: ['test/deploy/*.cfnlint.test.ts'],
    exclude: ['**/node_modules/**'],
    globalSetup: []
  }
})
