import { configDefaults, defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // *.nginx.test.ts need nginx installed (Debian packages); `npm run test:nginx` runs them.
    // *.deploy.test.ts need docker-compose; `npm run test:deploy` runs them.
    // *.cfnlint.test.ts need cfn-lint from PyPI; `npm run lint:cfn` runs them by hand.
    exclude: [...configDefaults.exclude, 'test/**/*.nginx.test.ts', 'test/**/*.deploy.test.ts', 'test/**/*.cfnlint.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two cores: more workers only fight over them and make timing-sensitive tests flaky.
    maxWorkers: 2
  }
})
